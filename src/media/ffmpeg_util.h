// What the FFmpeg readers and writers of src/media share: error text, owners
// of FFmpeg's objects, and the one way inputs are opened.
#pragma once
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

#include "media/image.h"

namespace kino::av {

inline std::string error_text(int code) {
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
struct InputDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
using CodecCtx = std::unique_ptr<AVCodecContext, CodecCtxDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using InputPtr = std::unique_ptr<AVFormatContext, InputDeleter>;

// FFmpeg's own error messages silenced while in scope (shown with -vv):
// kino reports a file that does not decode in its own one line.
struct QuietErrors {
  int saved = av_log_get_level();
  QuietErrors() {
    if (saved <= AV_LOG_ERROR) av_log_set_level(AV_LOG_FATAL);
  }
  ~QuietErrors() { av_log_set_level(saved); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;
};

// A decoded frame as RGB24 (bicubic, accurate rounding, full chroma);
// kino::Error naming `path` when its pixel format does not convert.
Image to_rgb24(const AVFrame& frame, const std::string& path);

enum class MediaKind { Image, Audio, Video };

// Opens an input for reading, safely for files from anywhere: a local
// regular file only (no URL, no protocol, no FIFO or device), through the
// demuxers of its kind only (images: the format the content says, whatever
// the extension; audio and video: the containers kino reads), so that no
// playlist or script inside it makes FFmpeg open other files. One-line
// kino::Error otherwise.
InputPtr open_input(const std::string& path, MediaKind kind);

}  // namespace kino::av
