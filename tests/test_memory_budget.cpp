// The memory estimate and the refusal of requests that cannot fit.
#include <gtest/gtest.h>

#include "kino/error.h"
#include "kino/memory_budget.h"

namespace {

// Wan2.1-1.3B's shapes (bench/models/wan2.1-t2v-1.3b.kino.json) in bf16.
kino::MemoryModel wan13b(bool fused) {
  kino::MemoryModel m;
  m.weight_bytes = 2'840'000'000 + 11'360'000'000 + 254'000'000;
  m.dit_dim = 1536;
  m.dit_ffn = 8960;
  m.dit_heads = 12;
  m.vae_dim = 96;
  m.fused_attention = fused;
  return m;
}

std::string refusal(const kino::MemoryModel& m, const kino::MemoryRequest& r, int64_t available) {
  try {
    kino::check_fits(m, r, available, 4, 16);
  } catch (const kino::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(MemoryBudget, EstimateGrowsWithEveryDimension) {
  for (bool fused : {false, true}) {
    const kino::MemoryModel m = wan13b(fused);
    const int64_t base = kino::estimate_peak_bytes(m, {832, 480, 81, true});
    EXPECT_GT(base, m.weight_bytes);
    EXPECT_GT(kino::estimate_peak_bytes(m, {832, 480, 85, true}), base);
    EXPECT_GT(kino::estimate_peak_bytes(m, {848, 480, 81, true}), base);
    EXPECT_GT(kino::estimate_peak_bytes(m, {832, 496, 81, true}), base);
    EXPECT_GT(base, kino::estimate_peak_bytes(m, {832, 480, 81, false}));
  }
  // Without fused attention the [L, L] scores dominate at 480p: 32760 tokens,
  // 2 x 12 heads x 32760^2 x 4 bytes x 3 = 309 GB.
  EXPECT_GT(kino::estimate_peak_bytes(wan13b(false), {832, 480, 81, true}), 300'000'000'000);
  EXPECT_LT(kino::estimate_peak_bytes(wan13b(true), {832, 480, 81, true}), 40'000'000'000);
}

TEST(MemoryBudget, RefusalNamesTheNeedAndSizesThatFit) {
  const kino::MemoryModel m = wan13b(true);
  const kino::MemoryRequest r{832, 480, 81, true};
  EXPECT_EQ(refusal(m, r, kino::estimate_peak_bytes(m, r)), "");  // exactly enough
  EXPECT_EQ(refusal(m, r, -1), "");                                 // unknown: not held against it

  const int64_t available = kino::estimate_peak_bytes(m, {832, 480, 41, true});
  const std::string msg = refusal(m, r, available);
  EXPECT_EQ(msg.rfind("832x480x81 needs about ", 0), 0u) << msg;
  EXPECT_NE(msg.find("try --frames 41 or --size "), std::string::npos) << msg;
  // The suggested size is the largest of this shape that fits.
  const size_t at = msg.find("--size ") + 7;
  int w = 0, h = 0;
  ASSERT_EQ(std::sscanf(msg.c_str() + at, "%dx%d", &w, &h), 2) << msg;
  EXPECT_EQ(h, kino::same_shape(r, w, 16).height);
  EXPECT_LE(kino::estimate_peak_bytes(m, {w, h, 81, true}), available);
  EXPECT_GT(kino::estimate_peak_bytes(m, kino::same_shape(r, w + 16, 16)), available);
}

TEST(MemoryBudget, WeightsThatDoNotFitAskForAnotherDtypeOrDevice) {
  const kino::MemoryModel m = wan13b(true);
  const std::string msg = refusal(m, {832, 480, 81, true}, m.weight_bytes / 2);
  EXPECT_NE(msg.find("the weights alone take 14.5 GB: use a smaller --dtype or another --device"), std::string::npos) << msg;
}
