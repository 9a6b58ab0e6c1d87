#include "media/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "media/ffmpeg_util.h"
#include "kino/error.h"

namespace kino {

namespace {

// Pillow's Resample.c: lanczos with a = 3 and the coefficient layout of
// precompute_coeffs / normalize_coeffs_8bpc.
constexpr int kPrecisionBits = 32 - 8 - 2;

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

struct Coefficients {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;  // per output pixel: first input pixel, taps
  std::vector<int32_t> k;             // per output pixel: ksize fixed-point weights
};

Coefficients coefficients(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0), support = 3.0 * filterscale;
  Coefficients c;
  c.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.k.assign(static_cast<size_t>(out_size * c.ksize), 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size) - xmin;
    double sum = 0;
    for (int64_t x = 0; x < xmax; ++x) sum += w[static_cast<size_t>(x)] = lanczos((static_cast<double>(x + xmin) - center + 0.5) / filterscale);
    for (int64_t x = 0; x < xmax; ++x) {
      const double v = sum != 0.0 ? w[static_cast<size_t>(x)] / sum : w[static_cast<size_t>(x)];
      c.k[static_cast<size_t>(xx * c.ksize + x)] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first.push_back(xmin);
    c.count.push_back(xmax);
  }
  return c;
}

uint8_t clip8(int64_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}

// One pass along width (`horizontal`) or height, 8-bit in and out.
Image resample_pass(const Image& in, int64_t out_size, bool horizontal) {
  const int64_t in_size = horizontal ? in.width : in.height;
  const Coefficients c = coefficients(in_size, out_size);
  Image out;
  out.width = horizontal ? out_size : in.width;
  out.height = horizontal ? in.height : out_size;
  out.rgb.resize(static_cast<size_t>(out.width * out.height * 3));
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x) {
      const int64_t i = horizontal ? x : y;
      const int32_t* k = &c.k[static_cast<size_t>(i * c.ksize)];
      for (int ch = 0; ch < 3; ++ch) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        for (int64_t t = 0; t < c.count[static_cast<size_t>(i)]; ++t) {
          const int64_t src = c.first[static_cast<size_t>(i)] + t;
          const int64_t sx = horizontal ? src : x, sy = horizontal ? y : src;
          acc += int64_t{in.rgb[static_cast<size_t>((sy * in.width + sx) * 3 + ch)]} * k[t];
        }
        out.rgb[static_cast<size_t>((y * out.width + x) * 3 + ch)] = clip8(acc);
      }
    }
  return out;
}

// Images kino reads: at least 16 pixels on a side (one latent patch of a
// Wan model; a smaller picture gives the model nothing to follow), at most
// 16384 on a side and 64 megapixels (an 8192x8192 photo; 192 MB as RGB).
constexpr int kMinImageSide = 16, kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t{64} << 20;

void check_image_size(const std::string& path, int64_t width, int64_t height) {
  if (width < kMinImageSide || height < kMinImageSide)
    throw Error(concat(path, ": image of ", width, "x", height, " is smaller than ", kMinImageSide, " pixels on a side"));
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    throw Error(concat(path, ": image of ", width, "x", height, " is larger than kino reads (", kMaxImageSide,
                       " on a side, 64 megapixels)"));
}

// A PNG's size from its IHDR chunk (bytes 16-23, big-endian), read before
// FFmpeg touches the file; nothing for other formats.
std::optional<std::pair<int64_t, int64_t>> png_header_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char b[24] = {0};
  in.read(reinterpret_cast<char*>(b), sizeof b);
  if (in.gcount() != sizeof b || std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0 || std::memcmp(b + 12, "IHDR", 4) != 0) return std::nullopt;
  auto be32 = [&](int at) { return (int64_t{b[at]} << 24) | (int64_t{b[at + 1]} << 16) | (int64_t{b[at + 2]} << 8) | int64_t{b[at + 3]}; };
  return std::pair{be32(16), be32(20)};
}

}  // namespace

Image read_image(const std::string& path) {
  const av::QuietErrors quiet;
  // The header's size is checked before anything is decoded (a small file
  // may declare a huge image), and no decoder may exceed the bound.
  const av::InputPtr fmt = av::open_input(path, av::MediaKind::Image);  // a regular file, an image format
  if (const auto size = png_header_size(path)) check_image_size(path, size->first, size->second);
  // Probing may decode a frame: under the same pixel bound.
  std::vector<AVDictionary*> probe(fmt->nb_streams, nullptr);
  for (auto& d : probe) av_dict_set_int(&d, "max_pixels", kMaxImagePixels, 0);
  const int probed = avformat_find_stream_info(fmt.get(), probe.data());
  for (auto& d : probe) av_dict_free(&d);
  if (probed < 0) throw Error(concat(path, ": not an image FFmpeg can read"));
  const int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0) throw Error(concat(path, ": no image in this file"));
  const AVCodecParameters* par = fmt->streams[stream]->codecpar;
  if (par->width > 0 && par->height > 0) check_image_size(path, par->width, par->height);
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (!codec) throw Error(concat(path, ": no decoder for this image format"));
  const av::CodecCtx dec(avcodec_alloc_context3(codec));
  if (avcodec_parameters_to_context(dec.get(), par) < 0) throw Error(concat(path, ": cannot open its decoder"));
  dec->max_pixels = kMaxImagePixels;
  if (avcodec_open2(dec.get(), codec, nullptr) < 0) throw Error(concat(path, ": cannot open its decoder"));
  const av::PacketPtr pkt(av_packet_alloc());
  const av::FramePtr frame(av_frame_alloc());
  bool got = false;
  while (!got && av_read_frame(fmt.get(), pkt.get()) >= 0) {
    if (pkt->stream_index == stream && avcodec_send_packet(dec.get(), pkt.get()) >= 0)
      got = avcodec_receive_frame(dec.get(), frame.get()) >= 0;
    av_packet_unref(pkt.get());
  }
  if (!got && avcodec_send_packet(dec.get(), nullptr) >= 0) got = avcodec_receive_frame(dec.get(), frame.get()) >= 0;
  if (!got || frame->width <= 0 || frame->height <= 0) throw Error(concat(path, ": the image could not be decoded (truncated or damaged)"));
  check_image_size(path, frame->width, frame->height);

  return av::to_rgb24(*frame, path);
}

Image resize_lanczos(const Image& in, int64_t width, int64_t height) {
  if (width < 1 || height < 1) throw Error(concat("cannot resize an image to ", width, "x", height));
  Image out = in;
  if (width != in.width) out = resample_pass(out, width, true);
  if (height != in.height) out = resample_pass(out, height, false);
  return out;
}

}  // namespace kino
