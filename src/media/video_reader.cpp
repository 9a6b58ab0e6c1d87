#include "media/video_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>

#include "kino/error.h"
#include "media/ffmpeg_util.h"

namespace kino {

namespace {

constexpr int64_t kMaxSide = 16384;
constexpr int64_t kMaxPixels = int64_t{64} << 20;

void check_frame_size(const std::string& path, int64_t width, int64_t height) {
  if (width < 16 || height < 16)
    throw Error(concat(path, ": video of ", width, "x", height, " is smaller than 16 pixels on a side"));
  if (width > kMaxSide || height > kMaxSide || width * height > kMaxPixels)
    throw Error(concat(path, ": video of ", width, "x", height, " is larger than kino reads (", kMaxSide, " on a side, 64 megapixels)"));
}

// The position of a pattern's conversion (%d or %0Nd) and its width (0:
// %d); npos when there is none. "%%" is a literal percent sign, any other
// '%' an ordinary character.
struct Pattern {
  size_t at = std::string::npos, length = 0;
  int width = 0;
};
Pattern find_pattern(const std::string& path) {
  Pattern p;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') continue;
    if (i + 1 < path.size() && path[i + 1] == '%') {
      ++i;
      continue;
    }
    size_t j = i + 1;
    int width = 0;
    if (j < path.size() && path[j] == '0') {
      ++j;
      while (j < path.size() && std::isdigit(static_cast<unsigned char>(path[j])) && width < 10) width = width * 10 + (path[j++] - '0');
    }
    if (j >= path.size() || path[j] != 'd') continue;
    if (p.at != std::string::npos) throw Error(concat(path, ": an image sequence names its frames with one %d or %0Nd"));
    p = {i, j + 1 - i, width};
    i = j;
  }
  return p;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    out += s[i];
    if (s[i] == '%' && i + 1 < s.size() && s[i + 1] == '%') ++i;
  }
  return out;
}

// The file name of frame `n` of a sequence.
std::string sequence_file(const std::string& path, const Pattern& p, int64_t n) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%0*lld", p.width, static_cast<long long>(n));
  return unescape(path.substr(0, p.at)) + digits + unescape(path.substr(p.at + p.length));
}

// A sequence's frame files, from the first number 0..4 that exists (as
// FFmpeg's image2 demuxer looks) to the first gap.
std::vector<std::string> sequence_files(const std::string& path) {
  const Pattern p = find_pattern(path);
  std::error_code ec;
  int64_t first = 0;
  while (first < 5 && !std::filesystem::exists(sequence_file(path, p, first), ec)) ++first;
  if (first == 5) throw Error(concat(path, ": no frame of this image sequence exists (looked for numbers 0 to 4)"));
  std::vector<std::string> files;
  for (int64_t n = first; std::filesystem::exists(sequence_file(path, p, n), ec); ++n) {
    if (static_cast<int64_t>(files.size()) == kMaxVideoFrames)
      throw Error(concat(path, ": more than ", kMaxVideoFrames, " frames in this image sequence"));
    files.push_back(sequence_file(path, p, n));
  }
  return files;
}

// Decodes the video stream of `path` frame by frame in display order;
// `frame(n, av_frame, seconds)` for each, false to stop.
void decode_video(const std::string& path, const std::function<bool(int64_t, const AVFrame&, double)>& frame) {
  const av::QuietErrors quiet;
  const av::InputPtr fmt = av::open_input(path, av::MediaKind::Video);
  if (avformat_find_stream_info(fmt.get(), nullptr) < 0) throw Error(concat(path, ": not a video FFmpeg can read"));
  const int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) throw Error(concat(path, ": no video stream in this file"));
  const AVStream* st = fmt->streams[stream];
  const AVCodecParameters* par = st->codecpar;
  if (par->width > 0 && par->height > 0) check_frame_size(path, par->width, par->height);
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (!codec) throw Error(concat(path, ": no decoder for this video's codec"));
  const av::CodecCtx dec(avcodec_alloc_context3(codec));
  if (avcodec_parameters_to_context(dec.get(), par) < 0) throw Error(concat(path, ": cannot open its decoder"));
  dec->max_pixels = kMaxPixels;
  dec->thread_count = 1;
  if (avcodec_open2(dec.get(), codec, nullptr) < 0) throw Error(concat(path, ": cannot open its decoder"));
  const av::PacketPtr pkt(av_packet_alloc());
  const av::FramePtr f(av_frame_alloc());
  const double base = av_q2d(st->time_base);
  const int64_t start = st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time;
  int64_t n = 0;
  bool more = true;
  auto drain = [&] {
    while (more && avcodec_receive_frame(dec.get(), f.get()) >= 0) {
      if (n == kMaxVideoFrames) throw Error(concat(path, ": more than ", kMaxVideoFrames, " frames in this video"));
      check_frame_size(path, f->width, f->height);
      const int64_t pts = f->best_effort_timestamp == AV_NOPTS_VALUE ? n : f->best_effort_timestamp - start;
      more = frame(n++, *f, static_cast<double>(pts) * base);
      av_frame_unref(f.get());
    }
  };
  while (more && av_read_frame(fmt.get(), pkt.get()) >= 0) {
    if (pkt->stream_index == stream && avcodec_send_packet(dec.get(), pkt.get()) >= 0) drain();
    av_packet_unref(pkt.get());
  }
  if (more && avcodec_send_packet(dec.get(), nullptr) >= 0) drain();
  if (n == 0) throw Error(concat(path, ": no frame of this video could be decoded"));
}

// The stream's frame duration in seconds (its average rate), 0 if unknown.
double frame_duration(const std::string& path) {
  const av::InputPtr fmt = av::open_input(path, av::MediaKind::Video);
  if (avformat_find_stream_info(fmt.get(), nullptr) < 0) return 0;
  const int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) return 0;
  const AVRational rate = fmt->streams[stream]->avg_frame_rate.num > 0 ? fmt->streams[stream]->avg_frame_rate
                                                                        : fmt->streams[stream]->r_frame_rate;
  return rate.num > 0 && rate.den > 0 ? av_q2d(av_inv_q(rate)) : 0;
}

}  // namespace

bool is_image_sequence(const std::string& path) {
  std::error_code ec;
  return !std::filesystem::exists(path, ec) && find_pattern(path).at != std::string::npos;
}

VideoIndex index_video(const std::string& path, double sequence_fps) {
  VideoIndex index;
  if (is_image_sequence(path)) {
    if (!(sequence_fps > 0)) throw Error(concat(path, ": an image sequence needs a frame rate above 0"));
    const std::vector<std::string> files = sequence_files(path);
    const Image first = read_image(files[0]);
    index.width = first.width;
    index.height = first.height;
    for (size_t i = 0; i < files.size(); ++i)
      index.times.push_back({static_cast<float>(static_cast<double>(i) / sequence_fps),
                             static_cast<float>(static_cast<double>(i + 1) / sequence_fps)});
    return index;
  }
  std::vector<double> starts;
  decode_video(path, [&](int64_t, const AVFrame& f, double seconds) {
    if (starts.empty()) {
      index.width = f.width;
      index.height = f.height;
    } else if (f.width != index.width || f.height != index.height) {
      throw Error(concat(path, ": its frames change size (", index.width, "x", index.height, " to ", f.width, "x", f.height, ")"));
    }
    starts.push_back(seconds);
    return true;
  });
  double last = frame_duration(path);
  if (!(last > 0)) last = starts.size() > 1 ? starts.back() - starts[starts.size() - 2] : 1.0 / 16;
  for (size_t i = 0; i < starts.size(); ++i) {
    const double end = i + 1 < starts.size() ? starts[i + 1] : starts[i] + last;
    index.times.push_back({static_cast<float>(starts[i]), static_cast<float>(end)});
  }
  return index;
}

std::vector<Image> read_video_frames(const std::string& path, const std::vector<int64_t>& ids) {
  std::map<int64_t, std::vector<size_t>> wanted;  // frame -> positions in the result
  for (size_t k = 0; k < ids.size(); ++k) wanted[ids[k]].push_back(k);
  std::vector<Image> out(ids.size());
  if (ids.empty()) return out;
  if (is_image_sequence(path)) {
    const std::vector<std::string> files = sequence_files(path);
    for (const auto& [n, at] : wanted) {
      if (n < 0 || n >= static_cast<int64_t>(files.size())) throw Error(concat(path, ": has no frame ", n));
      const Image img = read_image(files[static_cast<size_t>(n)]);
      for (size_t k : at) out[k] = img;
    }
  } else {
    const int64_t last = wanted.rbegin()->first;
    decode_video(path, [&](int64_t n, const AVFrame& f, double) {
      auto it = wanted.find(n);
      if (it != wanted.end()) {
        const Image img = av::to_rgb24(f, path);
        for (size_t k : it->second) out[k] = img;
      }
      return n < last;
    });
  }
  for (size_t k = 0; k < out.size(); ++k)
    if (out[k].rgb.empty()) throw Error(concat(path, ": frame ", ids[k], " could not be read"));
  const Image& first = out[0];
  for (const Image& img : out)
    if (img.width != first.width || img.height != first.height)
      throw Error(concat(path, ": its frames differ in size (", first.width, "x", first.height, " and ", img.width, "x", img.height, ")"));
  return out;
}

}  // namespace kino
