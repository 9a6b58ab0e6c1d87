// Training-free step caching, as the reference scripts do it on Wan2.1
// (../shared/fixtures/wan21-cache-tiny records each step by step):
//  - TeaCache (ali-vilab/TeaCache teacache_forward): the relative L1 change
//    of the time embedding e (or e0 with ret_steps) between calls, rescaled
//    by the model's polynomial and accumulated; below the threshold the
//    blocks are skipped and their last residual added instead.
//  - MagCache (Zehong-Ma/MagCache magcache_forward): the accumulated error
//    of the model's magnitude-ratio table; the same residual reuse, at most
//    K calls in a row, after the first retention share of the calls.
//  - EasyCache (H-EmbodVis/EasyCache easycache_forward): the predicted
//    output change k * |dx| / |y|; below the threshold the whole call is
//    replaced by x + (last output - its input), both branches at once.
// The calls are counted as the scripts count them, cnt = 2 * step + branch
// (branch 0 the prompt, 1 the negative prompt), each branch with its own
// state (EasyCache: the prompt call decides for both).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "request/cache_spec.h"

namespace kino {

class StepCache {
 public:
  enum class Action { Compute, AddResidual, ReuseOutput };

  // `constants`: the model's (TeaCache, MagCache need them); `steps`: the
  // sampler's step count.
  static std::unique_ptr<StepCache> create(const CacheSpec& spec, const CacheConstants* constants, int64_t steps);
  virtual ~StepCache() = default;

  // What TeaCache compares: 1 for e, 2 for e0, 0 for nothing (the others).
  virtual int modulated_input() const { return 0; }
  // The call (step, branch): `x` the transformer's latent input, `modulated`
  // what modulated_input() names (or undefined).
  virtual Action decide(int64_t step, int branch, const at::Tensor& x, const at::Tensor& modulated) = 0;
  // After the call: its output and, when the blocks ran, their residual.
  virtual void record(int64_t step, int branch, const at::Tensor& x, const at::Tensor& out, const at::Tensor& residual) = 0;
  // Forgets what it holds (a two-expert model's switch: the other
  // transformer's residuals and outputs are no prediction of this one's);
  // the next call of each branch is computed.
  virtual void reset() = 0;
  // AddResidual: the residual to add; ReuseOutput: the output for `x`.
  virtual at::Tensor residual(int branch) const;
  virtual at::Tensor reused_output(int branch, const at::Tensor& x) const;

  // Every decision so far, for reports and the fixture tests.
  struct Call {
    bool computed = true, forced = false, compared = false;
    double indicator = 0;  // the accumulated quantity compared with the threshold
  };
  const std::vector<Call>& calls() const { return calls_; }
  int64_t reused() const;

 protected:
  std::vector<Call> calls_;
};

}  // namespace kino
