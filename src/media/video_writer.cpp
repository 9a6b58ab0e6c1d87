#include "kino/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <cstdio>
#include <memory>
#include <regex>

#include "kino/atomic_file.h"
#include "kino/error.h"
#include "media/ffmpeg_util.h"

namespace kino {

namespace {

using av::CodecCtx;
using av::FramePtr;
using av::PacketPtr;

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
  if (rc < 0) throw Error(concat("cannot encode ", path, ": ", av::error_text(rc)));
  while ((rc = avcodec_receive_packet(enc, pkt)) >= 0) {
    sink(pkt);
    av_packet_unref(pkt);
  }
  if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) throw Error(concat("cannot encode ", path, ": ", av::error_text(rc)));
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
  if (int rc = avcodec_open2(enc.get(), codec, nullptr); rc < 0) throw Error(concat("cannot open the PNG encoder: ", av::error_text(rc)));
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

// An audio track muxed beside the video: decoded from an audio file (WAV,
// MP3, FLAC, Ogg, AAC, or the audio of an MP4/MOV/MKV/WebM),
// resampled to stereo 48 kHz, cut or padded with silence to `duration`
// seconds, encoded to AAC. Packets are prepared in open(), written in write().
class AudioTrack {
 public:
  void open(const std::string& path, AVFormatContext* out, double duration) {
    const av::InputPtr in_guard = av::open_input(path, av::MediaKind::Audio);
    AVFormatContext* in = in_guard.get();
    if (avformat_find_stream_info(in, nullptr) < 0) throw Error(concat(path, ": no stream information"));
    const AVCodec* dec_codec = nullptr;
    const int idx = av_find_best_stream(in, AVMEDIA_TYPE_AUDIO, -1, -1, &dec_codec, 0);
    if (idx < 0 || !dec_codec) throw Error(concat(path, ": no audio stream"));
    CodecCtx dec(avcodec_alloc_context3(dec_codec));
    avcodec_parameters_to_context(dec.get(), in->streams[idx]->codecpar);
    if (avcodec_open2(dec.get(), dec_codec, nullptr) < 0) throw Error(concat(path, ": cannot open the audio decoder"));

    const AVCodec* aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!aac) throw Error("this FFmpeg has no AAC encoder");
    enc_.reset(avcodec_alloc_context3(aac));
    enc_->sample_rate = 48000;
    enc_->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&enc_->ch_layout, 2);
    enc_->bit_rate = 160000;
    enc_->time_base = AVRational{1, enc_->sample_rate};
    if (out->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (int rc = avcodec_open2(enc_.get(), aac, nullptr); rc < 0) throw Error(concat("cannot open the AAC encoder: ", av::error_text(rc)));
    stream_ = avformat_new_stream(out, nullptr);
    avcodec_parameters_from_context(stream_->codecpar, enc_.get());
    stream_->time_base = enc_->time_base;

    SwrContext* swr = nullptr;
    if (swr_alloc_set_opts2(&swr, &enc_->ch_layout, enc_->sample_fmt, enc_->sample_rate, &dec->ch_layout, dec->sample_fmt,
                            dec->sample_rate, 0, nullptr) < 0 || swr_init(swr) < 0)
      throw Error(concat(path, ": cannot convert its audio"));
    std::unique_ptr<SwrContext, void (*)(SwrContext*)> swr_guard(swr, [](SwrContext* c) { swr_free(&c); });

    // Decode and resample everything into planar float buffers.
    const int64_t want = static_cast<int64_t>(std::llround(duration * enc_->sample_rate));
    std::vector<float> left, right;
    PacketPtr pkt(av_packet_alloc());
    FramePtr frame(av_frame_alloc());
    auto drain = [&] {
      while (avcodec_receive_frame(dec.get(), frame.get()) >= 0) {
        const int cap = swr_get_out_samples(swr, frame->nb_samples);
        std::vector<float> l(static_cast<size_t>(cap)), r(static_cast<size_t>(cap));
        uint8_t* planes[2] = {reinterpret_cast<uint8_t*>(l.data()), reinterpret_cast<uint8_t*>(r.data())};
        const int n = swr_convert(swr, planes, cap, const_cast<const uint8_t**>(frame->extended_data), frame->nb_samples);
        if (n > 0) {
          left.insert(left.end(), l.begin(), l.begin() + n);
          right.insert(right.end(), r.begin(), r.begin() + n);
        }
      }
    };
    while (static_cast<int64_t>(left.size()) < want && av_read_frame(in, pkt.get()) >= 0) {
      if (pkt->stream_index == idx && avcodec_send_packet(dec.get(), pkt.get()) >= 0) drain();
      av_packet_unref(pkt.get());
    }
    avcodec_send_packet(dec.get(), nullptr);
    drain();
    left.resize(static_cast<size_t>(want), 0.0f);  // cut, or pad with silence
    right.resize(static_cast<size_t>(want), 0.0f);

    // Encode in frame_size chunks.
    const int fs = enc_->frame_size > 0 ? enc_->frame_size : 1024;
    FramePtr af(av_frame_alloc());
    auto sink = [&](AVPacket* p) {
      av_packet_rescale_ts(p, enc_->time_base, stream_->time_base);
      p->stream_index = stream_->index;
      packets_.emplace_back(av_packet_clone(p));
    };
    for (int64_t pos = 0; pos < want; pos += fs) {
      const int n = static_cast<int>(std::min<int64_t>(fs, want - pos));
      av_frame_unref(af.get());
      af->nb_samples = n;
      af->format = enc_->sample_fmt;
      af->sample_rate = enc_->sample_rate;
      av_channel_layout_copy(&af->ch_layout, &enc_->ch_layout);
      if (av_frame_get_buffer(af.get(), 0) < 0) throw Error("out of memory");
      std::copy(left.begin() + pos, left.begin() + pos + n, reinterpret_cast<float*>(af->data[0]));
      std::copy(right.begin() + pos, right.begin() + pos + n, reinterpret_cast<float*>(af->data[1]));
      af->pts = pos;
      encode(enc_.get(), af.get(), pkt.get(), path, sink);
    }
    encode(enc_.get(), nullptr, pkt.get(), path, sink);
  }

  void write(AVFormatContext* out, const std::string& path) {
    for (auto& p : packets_)
      if (int e = av_interleaved_write_frame(out, p.get()); e < 0) throw Error(concat("cannot write ", path, ": ", av::error_text(e)));
    packets_.clear();
  }

 private:
  CodecCtx enc_;
  AVStream* stream_ = nullptr;
  std::vector<PacketPtr> packets_;
};

struct FormatCtx {
  AVFormatContext* ctx = nullptr;
  bool opened = false;
  ~FormatCtx() {
    if (ctx && opened) avio_closep(&ctx->pb);
    avformat_free_context(ctx);
  }
};

std::string write_container(const std::string& path, const Video& v, const std::map<std::string, std::string>& metadata,
                            const std::string& audio) {
  const bool to_stdout = path == "-";
  if (!to_stdout) check_output_folder(path);
  const AVOutputFormat* ofmt = to_stdout ? av_guess_format("mp4", nullptr, nullptr) : av_guess_format(nullptr, path.c_str(), nullptr);
  if (!ofmt || ofmt->video_codec == AV_CODEC_ID_NONE || std::string(ofmt->name).find("image2") != std::string::npos)
    throw Error(concat("cannot tell the video format from the name ", path, " (use .mp4, .mov, .mkv or .y4m)"));
  const bool is_mp4 = std::string(ofmt->name).find("mp4") != std::string::npos ||
                      std::string(ofmt->name).find("mov") != std::string::npos;

  std::unique_ptr<AtomicFile> out = to_stdout ? nullptr : std::make_unique<AtomicFile>(path);
  const std::string target = to_stdout ? std::string("pipe:1") : out->temp_path();
  FormatCtx fmt;
  if (int rc = avformat_alloc_output_context2(&fmt.ctx, ofmt, nullptr, target.c_str()); rc < 0)
    throw Error(concat("cannot create ", path, ": ", av::error_text(rc)));

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
  // x264's bitstream depends on its thread count, which by default follows
  // the CPUs this process may use (a cgroup, taskset, the machine): fixed,
  // the same frames give the same bytes everywhere. Encoding is a sliver
  // of a generation's time.
  enc->thread_count = 4;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "crf", "18", 0);
  av_dict_set(&opts, "preset", "medium", 0);
  int rc = avcodec_open2(enc.get(), codec, &opts);
  av_dict_free(&opts);
  if (rc < 0) throw Error(concat("cannot open libx264: ", av::error_text(rc)));
  avcodec_parameters_from_context(st->codecpar, enc.get());
  st->time_base = enc->time_base;
  st->avg_frame_rate = rate;

  for (const auto& [k, val] : metadata) av_dict_set(&fmt.ctx->metadata, k.c_str(), val.c_str(), 0);
  AudioTrack track;
  if (!audio.empty()) track.open(audio, fmt.ctx, static_cast<double>(v.frames) / v.fps);
  if ((rc = avio_open(&fmt.ctx->pb, target.c_str(), AVIO_FLAG_WRITE)) < 0)
    throw Error(concat("cannot write ", path, ": ", av::error_text(rc)));
  fmt.opened = true;
  AVDictionary* mux = nullptr;
  // A pipe cannot seek back to write the index: fragmented MP4 there.
  if (is_mp4) av_dict_set(&mux, "movflags", to_stdout ? "+frag_keyframe+empty_moov+default_base_moof+use_metadata_tags"
                                                      : "+faststart+use_metadata_tags", 0);
  rc = avformat_write_header(fmt.ctx, &mux);
  av_dict_free(&mux);
  if (rc < 0) throw Error(concat("cannot write ", path, ": ", av::error_text(rc)));

  av::SwsPtr sws(sws_getContext(
      static_cast<int>(v.width), static_cast<int>(v.height), AV_PIX_FMT_RGB24, static_cast<int>(v.width),
      static_cast<int>(v.height), AV_PIX_FMT_YUV420P, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws) throw Error("cannot set up colour conversion");
  FramePtr rgb = make_frame(AV_PIX_FMT_RGB24, enc->width, enc->height);
  FramePtr yuv = make_frame(AV_PIX_FMT_YUV420P, enc->width, enc->height);
  PacketPtr pkt(av_packet_alloc());
  auto sink = [&](AVPacket* p) {
    av_packet_rescale_ts(p, enc->time_base, st->time_base);
    p->stream_index = st->index;
    if (int e = av_interleaved_write_frame(fmt.ctx, p); e < 0) throw Error(concat("cannot write ", path, ": ", av::error_text(e)));
  };
  for (int64_t i = 0; i < v.frames; ++i) {
    fill_rgb(rgb.get(), v, i);
    if (av_frame_make_writable(yuv.get()) < 0) throw Error("out of memory");
    sws_scale(sws.get(), rgb->data, rgb->linesize, 0, enc->height, yuv->data, yuv->linesize);
    yuv->pts = i;
    encode(enc.get(), yuv.get(), pkt.get(), path, sink);
  }
  encode(enc.get(), nullptr, pkt.get(), path, sink);
  if (!audio.empty()) track.write(fmt.ctx, path);
  if ((rc = av_write_trailer(fmt.ctx)) < 0) throw Error(concat("cannot write ", path, ": ", av::error_text(rc)));
  if ((rc = avio_closep(&fmt.ctx->pb)) < 0) throw Error(concat("cannot write ", path, ": ", av::error_text(rc)));
  fmt.opened = false;
  if (out) out->commit();
  return path;
}

// YUV4MPEG2 (4:2:0, full-range JPEG chroma siting) to a file or stdout.
std::string write_y4m(const std::string& path, const Video& v) {
  const bool to_stdout = path == "-";
  if (!to_stdout) check_output_folder(path);
  if (v.width % 2 || v.height % 2) throw Error("Y4M 4:2:0 needs even width and height");
  std::unique_ptr<AtomicFile> out = to_stdout ? nullptr : std::make_unique<AtomicFile>(path);
  std::FILE* fp = to_stdout ? stdout : std::fopen(out->temp_path().c_str(), "wb");
  if (!fp) throw Error(concat("cannot write ", path));
  const AVRational rate = av_d2q(v.fps, 1001000);
  std::string header = concat("YUV4MPEG2 W", v.width, " H", v.height, " F", rate.num, ":", rate.den, " Ip A1:1 C420jpeg XCOLORRANGE=FULL\n");
  av::SwsPtr sws(sws_getContext(static_cast<int>(v.width), static_cast<int>(v.height), AV_PIX_FMT_RGB24,
                                                             static_cast<int>(v.width), static_cast<int>(v.height), AV_PIX_FMT_YUVJ420P,
                                                             SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr, nullptr));
  FramePtr rgb = make_frame(AV_PIX_FMT_RGB24, static_cast<int>(v.width), static_cast<int>(v.height));
  FramePtr yuv = make_frame(AV_PIX_FMT_YUVJ420P, static_cast<int>(v.width), static_cast<int>(v.height));
  bool ok = std::fwrite(header.data(), 1, header.size(), fp) == header.size();
  for (int64_t i = 0; ok && i < v.frames; ++i) {
    fill_rgb(rgb.get(), v, i);
    sws_scale(sws.get(), rgb->data, rgb->linesize, 0, static_cast<int>(v.height), yuv->data, yuv->linesize);
    ok = std::fwrite("FRAME\n", 1, 6, fp) == 6;
    for (int p = 0; p < 3 && ok; ++p) {
      const int w = static_cast<int>(p ? v.width / 2 : v.width), h = static_cast<int>(p ? v.height / 2 : v.height);
      for (int y = 0; y < h && ok; ++y) ok = std::fwrite(yuv->data[p] + y * yuv->linesize[p], 1, w, fp) == static_cast<size_t>(w);
    }
  }
  ok = (to_stdout ? std::fflush(fp) == 0 : std::fclose(fp) == 0) && ok;
  if (!ok) throw Error(concat("cannot write ", path, to_stdout ? " (broken pipe?)" : " (disk full?)"));
  if (out) out->commit();
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

namespace {

bool is_y4m(const std::string& path, const WriteOptions& options) {
  return options.format == "y4m" || (path.size() > 4 && path.compare(path.size() - 4, 4, ".y4m") == 0);
}

void check_audio_output(const std::string& path, const WriteOptions& options) {
  if (!options.audio.empty() && (is_y4m(path, options) || is_frame_pattern(path)))
    throw Error("--audio needs a container output (.mp4, .mov, .mkv)");
}

}  // namespace

void check_write_options(const std::string& path, const WriteOptions& options) {
  check_audio_output(path, options);
  if (options.audio.empty()) return;
  const av::InputPtr in = av::open_input(options.audio, av::MediaKind::Audio);
  if (avformat_find_stream_info(in.get(), nullptr) < 0) throw Error(concat(options.audio, ": no stream information"));
  const AVCodec* codec = nullptr;
  if (av_find_best_stream(in.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0) < 0 || !codec)
    throw Error(concat(options.audio, ": no audio stream"));
}

std::vector<std::string> write_video(const std::string& path, const Video& video,
                                     const std::map<std::string, std::string>& metadata, const WriteOptions& options) {
  if (video.frames < 1 || video.width < 1 || video.height < 1 ||
      video.rgb.size() != static_cast<size_t>(video.frames * video.width * video.height * 3))
    throw Error("internal: video buffer does not match its size");
  check_audio_output(path, options);
  if (is_y4m(path, options)) return {write_y4m(path, video)};
  if (path != "-" && is_frame_pattern(path)) return write_png_sequence(path, video);
  return {write_container(path, video, metadata, options.audio)};
}

void set_media_log_level(bool verbose) { av_log_set_level(verbose ? AV_LOG_INFO : AV_LOG_ERROR); }

std::map<std::string, std::string> read_metadata(const std::string& path) {
  const av::InputPtr in = av::open_input(path, av::MediaKind::Video);
  std::map<std::string, std::string> out;
  const AVDictionaryEntry* e = nullptr;
  while ((e = av_dict_get(in->metadata, "", e, AV_DICT_IGNORE_SUFFIX))) out[e->key] = e->value;
  return out;
}

}  // namespace kino
