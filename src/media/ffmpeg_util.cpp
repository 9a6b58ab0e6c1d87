#include "media/ffmpeg_util.h"

#include <filesystem>
#include <fstream>

#include "kino/error.h"

namespace kino::av {

namespace {

// The image demuxer for a file's first bytes: PNG, JPEG, WebP, BMP, GIF,
// TIFF or PPM/PGM; nullptr for anything else. The content decides, not
// the extension: an HLS playlist or a concat script named `.png` is not an
// image.
const char* image_demuxer(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char b[12] = {0};
  in.read(b, sizeof b);
  const std::string head(b, static_cast<size_t>(in.gcount()));
  auto starts = [&](const std::string& sig) { return head.compare(0, sig.size(), sig) == 0; };
  if (starts("\x89PNG\r\n\x1a\n")) return "png_pipe";
  if (starts("\xff\xd8\xff")) return "jpeg_pipe";
  if (starts("RIFF") && head.size() >= 12 && head.compare(8, 4, "WEBP") == 0) return "webp_pipe";
  if (starts("BM")) return "bmp_pipe";
  if (starts("GIF87a") || starts("GIF89a")) return "gif";
  if (starts(std::string("II*\0", 4)) || starts(std::string("MM\0*", 4))) return "tiff_pipe";
  if (head.size() >= 2 && head[0] == 'P' && (head[1] == '5' || head[1] == '6')) return head[1] == '5' ? "pgm_pipe" : "ppm_pipe";
  return nullptr;
}

// Each kind of input: its name in messages and the demuxers it may use
// (FFmpeg's names).
struct KindRule {
  const char* name;
  const char* demuxers;
};
KindRule rule_of(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image: return {"image", "png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,gif,tiff_pipe,pgm_pipe,ppm_pipe"};
    case MediaKind::Audio: return {"audio", "wav,mp3,flac,ogg,aac,mov,mp4,m4a,matroska,webm"};
    case MediaKind::Video: return {"video", "mov,mp4,m4a,matroska,webm,yuv4mpegpipe"};
  }
  return {"media", ""};
}

}  // namespace

Image to_rgb24(const AVFrame& f, const std::string& path) {
  Image img;
  img.width = f.width;
  img.height = f.height;
  img.rgb.resize(static_cast<size_t>(img.width * img.height * 3));
  const SwsPtr sws(sws_getContext(f.width, f.height, static_cast<AVPixelFormat>(f.format), f.width, f.height, AV_PIX_FMT_RGB24,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws) throw Error(concat(path, ": cannot convert its pixel format to RGB"));
  uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {static_cast<int>(img.width * 3), 0, 0, 0};
  sws_scale(sws.get(), f.data, f.linesize, 0, f.height, dst, dst_stride);
  return img;
}

InputPtr open_input(const std::string& path, MediaKind kind) {
  const KindRule rule = rule_of(kind);
  const char* what = rule.name;
  std::error_code ec;
  if (path.find('\0') != std::string::npos) throw Error(concat("the ", what, " path holds a NUL character"));
  if (path.find("://") != std::string::npos) throw Error(concat(path, ": kino reads local files only, not URLs"));
  if (!std::filesystem::exists(path, ec)) throw Error(concat("cannot read ", what, " ", path, ": no such file"));
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(concat(path, ": not a regular file"));
  const AVInputFormat* format = nullptr;
  if (kind == MediaKind::Image) {
    const char* name = image_demuxer(path);
    if (!name) throw Error(concat(path, ": not a PNG, JPEG, WebP, BMP, GIF, TIFF or PPM image"));
    format = av_find_input_format(name);
    if (!format) throw Error(concat(path, ": this FFmpeg cannot read ", name, " images"));
  }
  // The local file only ("file:" keeps FFmpeg from reading a protocol into
  // the name), through the demuxers of its kind.
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw Error("out of memory opening " + path);
  raw->format_whitelist = av_strdup(rule.demuxers);
  raw->protocol_whitelist = av_strdup("file");
  const int rc = avformat_open_input(&raw, ("file:" + path).c_str(), format, nullptr);
  if (rc < 0) {
    if (rc == AVERROR(EINVAL)) throw Error(concat(path, ": not an ", what, " file kino reads"));
    throw Error(concat("cannot read ", what, " ", path, ": ", error_text(rc)));
  }
  return InputPtr(raw);
}

}  // namespace kino::av
