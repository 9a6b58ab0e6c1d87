#include "kino/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <cstdio>
#include <memory>
#include <regex>

#include "kino/atomic_file.h"
#include "kino/error.h"

namespace kino {

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

struct CodecCtxDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using CodecCtx = std::unique_ptr<AVCodecContext, CodecCtxDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;

const std::regex kPattern("%0?[0-9]*d");

FramePtr make_frame(AVPixelFormat fmt, int w, int h) {
  FramePtr f(av_frame_alloc());
  f->format = fmt;
  f->width = w;
  f->height = h;
  if (av_frame_get_buffer(f.get(), 0) < 0) throw Error("out of memory allocating a video frame");
  return f;
}

// Copies frame `i` of the RGB24 video into `dst` (an RGB24 AVFrame).
void fill_rgb(AVFrame* dst, const Video& v, int64_t i) {
  const uint8_t* src = v.rgb.data() + static_cast<size_t>(i * v.height * v.width * 3);
  av_image_copy_plane(dst->data[0], dst->linesize[0], src, static_cast<int>(v.width * 3), static_cast<int>(v.width * 3),
                      static_cast<int>(v.height));
}

// Sends one frame (or nullptr to flush) and hands every packet to `sink`.
template <typename Sink>
void encode(AVCodecContext* enc, AVFrame* frame, AVPacket* pkt, const std::string& path, Sink&& sink) {
  int rc = avcodec_send_frame(enc, frame);
  if (rc < 0) throw Error(concat("cannot encode ", path, ": ", av_error(rc)));
  while ((rc = avcodec_receive_packet(enc, pkt)) >= 0) {
    sink(pkt);
    av_packet_unref(pkt);
  }
  if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) throw Error(concat("cannot encode ", path, ": ", av_error(rc)));
}

// One RGB24 image as PNG bytes.
std::vector<uint8_t> encode_png(const uint8_t* rgb, int64_t width, int64_t height) {
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (!codec) throw Error("this FFmpeg has no PNG encoder");
  CodecCtx enc(avcodec_alloc_context3(codec));
  enc->width = static_cast<int>(width);
  enc->height = static_cast<int>(height);
  enc->pix_fmt = AV_PIX_FMT_RGB24;
  enc->time_base = AVRational{1, 1};
  if (int rc = avcodec_open2(enc.get(), codec, nullptr); rc < 0) throw Error(concat("cannot open the PNG encoder: ", av_error(rc)));
  FramePtr frame = make_frame(AV_PIX_FMT_RGB24, enc->width, enc->height);
  av_image_copy_plane(frame->data[0], frame->linesize[0], rgb, static_cast<int>(width * 3), static_cast<int>(width * 3),
                      static_cast<int>(height));
  frame->pts = 0;
  PacketPtr pkt(av_packet_alloc());
  std::vector<uint8_t> bytes;
  auto sink = [&](AVPacket* p) { bytes.insert(bytes.end(), p->data, p->data + p->size); };
  encode(enc.get(), frame.get(), pkt.get(), "PNG", sink);
  encode(enc.get(), nullptr, pkt.get(), "PNG", sink);
  return bytes;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) throw Error(concat("cannot write ", path));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), fp) == bytes.size();
  if (std::fclose(fp) != 0 || !ok) throw Error(concat("cannot write ", path, " (disk full?)"));
}

// Every frame is written under a temporary name first; only when all of them
// are complete are they renamed into place.
std::vector<std::string> write_png_sequence(const std::string& pattern, const Video& v) {
  std::vector<std::unique_ptr<AtomicFile>> files;
  const size_t frame_bytes = static_cast<size_t>(v.width * v.height * 3);
  for (int64_t i = 0; i < v.frames; ++i) {
    const std::string path = frame_path(pattern, i);
    check_output_folder(path);
    files.push_back(std::make_unique<AtomicFile>(path));
    write_bytes(files.back()->temp_path(), encode_png(v.rgb.data() + i * frame_bytes, v.width, v.height));
  }
  std::vector<std::string> written;
  for (auto& f : files) {
    f->commit();
    written.push_back(f->final_path());
  }
  return written;
}

struct FormatCtx {
  AVFormatContext* ctx = nullptr;
  bool opened = false;
  ~FormatCtx() {
    if (ctx && opened) avio_closep(&ctx->pb);
    avformat_free_context(ctx);
  }
};

std::string write_container(const std::string& path, const Video& v, const std::map<std::string, std::string>& metadata) {
  check_output_folder(path);
  const AVOutputFormat* ofmt = av_guess_format(nullptr, path.c_str(), nullptr);
  if (!ofmt || ofmt->video_codec == AV_CODEC_ID_NONE || std::string(ofmt->name).find("image2") != std::string::npos)
    throw Error(concat("cannot tell the video format from the name ", path, " (use .mp4, .mov or .mkv)"));
  const bool is_mp4 = std::string(ofmt->name).find("mp4") != std::string::npos ||
                      std::string(ofmt->name).find("mov") != std::string::npos;

  AtomicFile out(path);
  FormatCtx fmt;
  if (int rc = avformat_alloc_output_context2(&fmt.ctx, ofmt, nullptr, out.temp_path().c_str()); rc < 0)
    throw Error(concat("cannot create ", path, ": ", av_error(rc)));

  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) throw Error("this FFmpeg has no libx264 encoder");
  AVStream* st = avformat_new_stream(fmt.ctx, nullptr);
  CodecCtx enc(avcodec_alloc_context3(codec));
  // A rational frame rate good to 1/1001 (e.g. 24000/1001).
  const AVRational rate = av_d2q(v.fps, 1001000);
  enc->width = static_cast<int>(v.width);
  enc->height = static_cast<int>(v.height);
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = av_inv_q(rate);
  enc->framerate = rate;
  enc->gop_size = 2 * static_cast<int>(std::ceil(v.fps));
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = AVCOL_SPC_BT709;
  enc->color_primaries = AVCOL_PRI_BT709;
  enc->color_trc = AVCOL_TRC_BT709;
  if (fmt.ctx->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "crf", "18", 0);
  av_dict_set(&opts, "preset", "medium", 0);
  int rc = avcodec_open2(enc.get(), codec, &opts);
  av_dict_free(&opts);
  if (rc < 0) throw Error(concat("cannot open libx264: ", av_error(rc)));
  avcodec_parameters_from_context(st->codecpar, enc.get());
  st->time_base = enc->time_base;
  st->avg_frame_rate = rate;

  for (const auto& [k, val] : metadata) av_dict_set(&fmt.ctx->metadata, k.c_str(), val.c_str(), 0);
  if ((rc = avio_open(&fmt.ctx->pb, out.temp_path().c_str(), AVIO_FLAG_WRITE)) < 0)
    throw Error(concat("cannot write ", path, ": ", av_error(rc)));
  fmt.opened = true;
  AVDictionary* mux = nullptr;
  if (is_mp4) av_dict_set(&mux, "movflags", "+faststart+use_metadata_tags", 0);
  rc = avformat_write_header(fmt.ctx, &mux);
  av_dict_free(&mux);
  if (rc < 0) throw Error(concat("cannot write ", path, ": ", av_error(rc)));

  std::unique_ptr<SwsContext, SwsDeleter> sws(sws_getContext(
      static_cast<int>(v.width), static_cast<int>(v.height), AV_PIX_FMT_RGB24, static_cast<int>(v.width),
      static_cast<int>(v.height), AV_PIX_FMT_YUV420P, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws) throw Error("cannot set up colour conversion");
  FramePtr rgb = make_frame(AV_PIX_FMT_RGB24, enc->width, enc->height);
  FramePtr yuv = make_frame(AV_PIX_FMT_YUV420P, enc->width, enc->height);
  PacketPtr pkt(av_packet_alloc());
  auto sink = [&](AVPacket* p) {
    av_packet_rescale_ts(p, enc->time_base, st->time_base);
    p->stream_index = st->index;
    if (int e = av_interleaved_write_frame(fmt.ctx, p); e < 0) throw Error(concat("cannot write ", path, ": ", av_error(e)));
  };
  for (int64_t i = 0; i < v.frames; ++i) {
    fill_rgb(rgb.get(), v, i);
    if (av_frame_make_writable(yuv.get()) < 0) throw Error("out of memory");
    sws_scale(sws.get(), rgb->data, rgb->linesize, 0, enc->height, yuv->data, yuv->linesize);
    yuv->pts = i;
    encode(enc.get(), yuv.get(), pkt.get(), path, sink);
  }
  encode(enc.get(), nullptr, pkt.get(), path, sink);
  if ((rc = av_write_trailer(fmt.ctx)) < 0) throw Error(concat("cannot write ", path, ": ", av_error(rc)));
  if ((rc = avio_closep(&fmt.ctx->pb)) < 0) throw Error(concat("cannot write ", path, ": ", av_error(rc)));
  fmt.opened = false;
  out.commit();
  return path;
}

}  // namespace

bool is_frame_pattern(const std::string& path) { return std::regex_search(path, kPattern); }

std::string frame_path(const std::string& pattern, int64_t index) {
  std::smatch m;
  if (!std::regex_search(pattern, m, kPattern)) return pattern;
  char buf[64];
  std::snprintf(buf, sizeof buf, m.str().c_str(), static_cast<int>(index));
  return m.prefix().str() + buf + m.suffix().str();
}

void write_png(const std::string& path, const uint8_t* rgb, int64_t width, int64_t height) {
  check_output_folder(path);
  AtomicFile out(path);
  write_bytes(out.temp_path(), encode_png(rgb, width, height));
  out.commit();
}

std::vector<std::string> write_video(const std::string& path, const Video& video,
                                     const std::map<std::string, std::string>& metadata) {
  if (video.frames < 1 || video.width < 1 || video.height < 1 ||
      video.rgb.size() != static_cast<size_t>(video.frames * video.width * video.height * 3))
    throw Error("internal: video buffer does not match its size");
  if (is_frame_pattern(path)) return write_png_sequence(path, video);
  return {write_container(path, video, metadata)};
}

}  // namespace kino
