// Wan DiT parity with wan.modules.model.WanModel on the tiny fixture.
#include <gtest/gtest.h>

#include "kino/error.h"
#include "wan/dit.h"
#include "fixture_models.h"
#include "support.h"

using namespace kino;

TEST(WanDiT, SingleSampleMatchesEveryStage) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("dit_io.safetensors"));
  WanDiT dit = test::fixture_dit();
  Trace trace;
  c10::InferenceMode inference;
  auto out = dit.forward({io["a.x"]}, {io["a.t"][0].item<double>()}, {io["a.context"]}, io["a.seq_len"].item<int64_t>(), &trace);
  const std::string file = "dit_io.safetensors";
  for (const char* name : {"patch_embedding_out", "e", "e0", "context_embedded", "block0_self_q_roped", "block0_self_k_roped",
                           "block0_self_v", "block0_self_attn_core", "block0_self_attn_out", "block0_cross_q", "block0_cross_k",
                           "block0_cross_v", "block0_cross_attn_core", "block0_cross_attn_out", "block0_ffn_out", "block0_out",
                           "head_out"})
    EXPECT_PARITY(trace.at(name), io[std::string("a.") + name], file, std::string("a.") + name);
  EXPECT_PARITY(out[0], io["a.out"], file, "a.out");
}

TEST(WanDiT, RaggedBatchMasksPaddedKeys) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("dit_io.safetensors"));
  WanDiT dit = test::fixture_dit();
  c10::InferenceMode inference;
  at::Tensor t = io["b.t"];
  auto out = dit.forward({io["b.x0"], io["b.x1"]}, {t[0].item<double>(), t[1].item<double>()},
                         {io["b.context0"], io["b.context1"]}, io["b.seq_len"].item<int64_t>());
  EXPECT_PARITY(out[0], io["b.out0"], "dit_io.safetensors", "b.out0");
  EXPECT_PARITY(out[1], io["b.out1"], "dit_io.safetensors", "b.out1");
}

TEST(WanDiT, RefusesContextsLongerThanTextLen) {
  KINO_REQUIRE_FIXTURES();
  WanDiT dit = test::fixture_dit();
  c10::InferenceMode inference;
  EXPECT_THROW(dit.forward({at::zeros({16, 1, 2, 2})}, {500}, {at::zeros({33, 64})}, 1), Error);
}

// Block streaming (--offload blocks) changes where the blocks' matrices
// wait, not the numbers: the output equals the resident model's bit for bit,
// over several forwards (the stream wraps from the last block to the
// first), with at most `ahead` + 1 blocks fetched at a time. On the CPU the
// "device" copies are the host tensors; DeviceParity.WanDiTStreamedBlocks
// runs it with a GPU's side stream.
TEST(WanDiT, StreamedBlocksGiveTheResidentOutput) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("dit_io.safetensors"));
  c10::InferenceMode inference;
  const WanDiT resident = test::fixture_dit();
  auto run = [&](const WanDiT& dit, double t) {
    return dit.forward({io["a.x"]}, {t}, {io["a.context"]}, io["a.seq_len"].item<int64_t>())[0];
  };
  for (int ahead : {1, 2}) {
    WanDiT streamed = test::fixture_dit();
    streamed.stream_blocks(at::kCPU, ahead);
    for (double t : {900.0, 500.0, 100.0}) {
      EXPECT_TRUE(at::equal(run(streamed, t), run(resident, t))) << "ahead " << ahead << ", t " << t;
      EXPECT_LE(streamed.resident_blocks(), static_cast<size_t>(ahead + 1));
    }
  }
}
