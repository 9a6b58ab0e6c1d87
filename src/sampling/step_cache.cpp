#include "sampling/step_cache.h"

#include <cmath>

#include "kino/error.h"

namespace kino {

namespace {

// mean |a - b| / mean |b| in float32, as .item() reads it (TeaCache).
double rel_l1(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().mean() / b.abs().mean()).item<float>();
}

// np.poly1d(c)(x): Horner's rule in float64, highest power first.
double polynomial(const std::vector<double>& c, double x) {
  double y = 0;
  for (double v : c) y = y * x + v;
  return y;
}

// TeaCache and MagCache reuse the blocks' residual of each branch.
class ResidualCache : public StepCache {
 public:
  at::Tensor residual(int branch) const override { return residuals_[branch]; }
  void record(int64_t, int branch, const at::Tensor&, const at::Tensor&, const at::Tensor& residual) override {
    if (residual.defined()) residuals_[branch] = residual;
  }
  void reset() override {
    residuals_[0] = residuals_[1] = at::Tensor();
    forget();
  }

 protected:
  virtual void forget() = 0;

  at::Tensor residuals_[2];
};

class TeaCache : public ResidualCache {
 public:
  TeaCache(const CacheSpec& s, const CacheConstants& c, int64_t steps)
      : thresh_(s.threshold), use_e0_(s.ret_steps), coefficients_(s.ret_steps ? c.teacache_ret_steps : c.teacache),
        // teacache_generate.py: ret_steps 5*2 / cutoff 2S with --use_ret_steps, else 1*2 / 2S - 2.
        ret_steps_(s.ret_steps ? 10 : 2), cutoff_(s.ret_steps ? 2 * steps : 2 * steps - 2) {}

  int modulated_input() const override { return use_e0_ ? 2 : 1; }

  Action decide(int64_t step, int branch, const at::Tensor&, const at::Tensor& m) override {
    const int64_t cnt = 2 * step + branch;
    Call call;
    double& acc = acc_[branch];
    if (cnt < ret_steps_ || cnt >= cutoff_) {
      call.forced = true;
      acc = 0;
    } else if (!previous_[branch].defined()) {
      acc = 0;  // after a reset: nothing to compare with
    } else {
      acc += polynomial(coefficients_, rel_l1(m, previous_[branch]));
      call.compared = true;
      call.indicator = acc;
      call.computed = !(acc < thresh_) || !residuals_[branch].defined();
      if (call.computed) acc = 0;
    }
    previous_[branch] = m;  // after every call, reused ones too
    calls_.push_back(call);
    return call.computed ? Action::Compute : Action::AddResidual;
  }

 private:
  void forget() override {
    acc_[0] = acc_[1] = 0;
    previous_[0] = previous_[1] = at::Tensor();
  }

  double thresh_;
  bool use_e0_;
  std::vector<double> coefficients_;
  int64_t ret_steps_, cutoff_;
  double acc_[2] = {0, 0};
  at::Tensor previous_[2];
};

class MagCache : public ResidualCache {
 public:
  MagCache(const CacheSpec& s, const CacheConstants& c, int64_t steps)
      : thresh_(s.threshold), k_(s.k), first_(static_cast<int64_t>(2 * steps * s.retention)) {
    const std::vector<double>& table = c.mag_ratios;
    if (static_cast<int64_t>(table.size()) == 2 * steps) {
      ratios_ = table;
      return;
    }
    // nearest_interp per branch: indices round(arange(S) * (n - 1) / (S - 1)),
    // numpy's round half to even (std::nearbyint in the default mode).
    const int64_t n = static_cast<int64_t>(table.size()) / 2;
    ratios_.resize(static_cast<size_t>(2 * steps));
    for (int64_t i = 0; i < steps; ++i) {
      const int64_t j = steps == 1 ? n - 1
                                   : static_cast<int64_t>(std::nearbyint(static_cast<double>(i) *
                                                                         (static_cast<double>(n - 1) / static_cast<double>(steps - 1))));
      for (int b = 0; b < 2; ++b) ratios_[static_cast<size_t>(2 * i + b)] = table[static_cast<size_t>(2 * j + b)];
    }
  }

  Action decide(int64_t step, int branch, const at::Tensor&, const at::Tensor&) override {
    const int64_t cnt = 2 * step + branch;
    Call call;
    if (cnt < first_) {
      call.forced = true;
    } else {
      ratio_[branch] *= ratios_[static_cast<size_t>(cnt)];
      steps_[branch] += 1;
      err_[branch] += std::abs(1 - ratio_[branch]);
      call.compared = true;
      call.indicator = err_[branch];
      call.computed = !(err_[branch] < thresh_ && steps_[branch] <= k_) || !residuals_[branch].defined();
      if (call.computed) {
        err_[branch] = 0;
        steps_[branch] = 0;
        ratio_[branch] = 1;
      }
    }
    calls_.push_back(call);
    return call.computed ? Action::Compute : Action::AddResidual;
  }

 private:
  void forget() override {
    ratio_[0] = ratio_[1] = 1;
    err_[0] = err_[1] = 0;
    steps_[0] = steps_[1] = 0;
  }

  double thresh_;
  int64_t k_, first_;
  std::vector<double> ratios_;
  double ratio_[2] = {1, 1}, err_[2] = {0, 0};
  int64_t steps_[2] = {0, 0};
};

class EasyCache : public StepCache {
 public:
  EasyCache(const CacheSpec& s, int64_t steps) : thresh_(static_cast<float>(s.threshold)), cutoff_(2 * steps - 2) {}

  Action decide(int64_t step, int branch, const at::Tensor& x, const at::Tensor&) override {
    const int64_t cnt = 2 * step + branch;
    Call call;
    if (branch == 0) {
      if (cnt < kRetSteps || cnt >= cutoff_) {
        call.forced = true;
        acc_ = at::zeros({}, at::kFloat);
        compute_pair_ = true;
      } else if (previous_input_.defined() && last_output_.defined() && k_.defined()) {
        const at::Tensor input_change = (x - previous_input_).abs().mean();
        const at::Tensor output_norm = last_output_.abs().mean();
        acc_ = acc_ + k_ * (input_change / output_norm);  // float32 0-d tensors
        call.compared = true;
        call.indicator = acc_.item<float>();
        compute_pair_ = !(acc_.item<float>() < thresh_);
        if (compute_pair_) acc_ = at::zeros({}, at::kFloat);
      } else {
        compute_pair_ = true;
      }
      previous_input_ = x;
    } else {
      call.forced = cnt < kRetSteps || cnt >= cutoff_;
    }
    // A reuse needs that branch's earlier output.
    call.computed = compute_pair_ || !cached_[branch].defined();
    calls_.push_back(call);
    return call.computed ? Action::Compute : Action::ReuseOutput;
  }

  void record(int64_t, int branch, const at::Tensor& x, const at::Tensor& out, const at::Tensor&) override {
    if (!calls_.back().computed) return;
    if (branch == 0) {
      // k = mean|y - y_last| / mean|x - x_last computed|.
      if (last_output_.defined() && last_computed_input_.defined())
        k_ = (out - last_output_).abs().mean() / (x - last_computed_input_).abs().mean();
      last_computed_input_ = x;
      last_output_ = out;
    }
    cached_[branch] = out - x;
  }

  at::Tensor reused_output(int branch, const at::Tensor& x) const override { return x + cached_[branch]; }

  void reset() override {
    acc_ = at::zeros({}, at::kFloat);
    k_ = previous_input_ = last_output_ = last_computed_input_ = cached_[0] = cached_[1] = at::Tensor();
    compute_pair_ = true;
  }

 private:
  static constexpr int64_t kRetSteps = 10 * 2;  // easycache_generate.py: fixed, its --ret_steps is unused
  float thresh_;
  int64_t cutoff_;
  at::Tensor acc_ = at::zeros({}, at::kFloat), k_;
  bool compute_pair_ = true;
  at::Tensor previous_input_, last_output_, last_computed_input_, cached_[2];
};

}  // namespace

at::Tensor StepCache::residual(int) const { throw Error("this step cache keeps no residual"); }
at::Tensor StepCache::reused_output(int, const at::Tensor&) const { throw Error("this step cache keeps no output"); }

int64_t StepCache::reused() const {
  int64_t n = 0;
  for (const Call& c : calls_) n += c.computed ? 0 : 1;
  return n;
}

std::unique_ptr<StepCache> StepCache::create(const CacheSpec& spec, const CacheConstants* constants, int64_t steps) {
  switch (spec.method) {
    case CacheSpec::Method::None: return nullptr;
    case CacheSpec::Method::EasyCache: return std::make_unique<EasyCache>(spec, steps);
    case CacheSpec::Method::TeaCache:
    case CacheSpec::Method::MagCache:
      if (!constants) throw Error(concat(cache_method_name(spec.method), " needs the model's constants"));
      if (spec.method == CacheSpec::Method::TeaCache) return std::make_unique<TeaCache>(spec, *constants, steps);
      return std::make_unique<MagCache>(spec, *constants, steps);
  }
  return nullptr;
}

}  // namespace kino
