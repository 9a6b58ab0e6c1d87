// Streaming a model's blocks to the device ahead of use (`--offload
// blocks`; diffusers' group offloading with a prefetch stream,
// WanVideoWrapper's block swap): the blocks' matrices wait in pinned host
// memory, and each block's device copy is made on a side stream `ahead`
// blocks before it runs, so that copying the next blocks overlaps computing
// this one. At most ahead + 1 blocks are on the device; after the last block
// the first ones are fetched again (the next denoising step starts there).
//
// Memory reuse is safe without record_stream: a device copy is dropped only
// after its block's kernels were enqueued, and the side stream waits for the
// compute stream's work so far before it copies into memory it reuses.
#pragma once
#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <deque>
#include <functional>
#include <optional>
#include <vector>

namespace kino::nn {

template <class Block>
class BlockStream {
 public:
  // `upload(host block)`: its device copy, the copies enqueued (non-blocking)
  // on the current stream.
  using Upload = std::function<Block(const Block&)>;

  BlockStream(at::Device device, int ahead, Upload upload) : device_(device), ahead_(std::max(1, ahead)), upload_(std::move(upload)) {
    if (device_.is_cuda()) side_ = c10::impl::VirtualGuardImpl(device_.type()).getStreamFromGlobalPool(device_);
  }

  // Block i of `host` on the device, ready for the current stream; the next
  // `ahead` blocks start copying.
  const Block& get(const std::vector<Block>& host, size_t i) {
    while (!slots_.empty() && slots_.front().index != i) slots_.pop_front();  // blocks that have run
    if (slots_.empty()) fetch(host, i);
    for (size_t k = 1; k <= static_cast<size_t>(ahead_) && k < host.size(); ++k) {
      const size_t j = (i + k) % host.size();
      bool queued = false;
      for (const Slot& s : slots_) queued = queued || s.index == j;
      if (!queued) fetch(host, j);
    }
    Slot& s = slots_.front();
    if (s.ready) s.ready->block(c10::impl::VirtualGuardImpl(device_.type()).getStream(device_));
    return s.block;
  }

  // Blocks on the device now (for tests and the memory report).
  size_t resident() const { return slots_.size(); }

 private:
  struct Slot {
    size_t index;
    Block block;
    std::optional<c10::Event> ready;  // recorded on the side stream after the copies
  };

  void fetch(const std::vector<Block>& host, size_t j) {
    if (!side_) {
      slots_.push_back({j, upload_(host[j]), std::nullopt});
      return;
    }
    const c10::impl::VirtualGuardImpl impl(device_.type());
    c10::Event after_compute(device_.type());
    after_compute.record(impl.getStream(device_));
    after_compute.block(*side_);
    const c10::StreamGuard on_side(*side_);
    Slot s{j, upload_(host[j]), c10::Event(device_.type())};
    s.ready->record(*side_);
    slots_.push_back(std::move(s));
  }

  at::Device device_;
  int ahead_;
  Upload upload_;
  std::optional<c10::Stream> side_;
  std::deque<Slot> slots_;  // in the order they run
};

}  // namespace kino::nn
