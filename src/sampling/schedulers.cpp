// Scalar coefficients are computed in float32, as the reference computes
// them on 0-d float32 tensors; IEEE infinities at sigma = 0 and sigma = 1
// are part of the algorithm (log 0, expm1(-inf) = -1), hence no fast-math.
#include <cmath>

#include "kino/error.h"
#include "sampling/sampler.h"

namespace kino {

SamplerKind parse_sampler(const std::string& name) {
  if (name == "unipc") return SamplerKind::UniPC;
  if (name == "dpm++" || name == "dpmpp") return SamplerKind::DPMpp;
  if (name == "euler") return SamplerKind::Euler;
  if (name == "distill") return SamplerKind::Distill;
  throw Error(concat("unknown sampler '", name, "' (expected unipc, dpm++, euler or distill)"));
}

std::string sampler_name(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::UniPC: return "unipc";
    case SamplerKind::DPMpp: return "dpm++";
    case SamplerKind::Euler: return "euler";
    case SamplerKind::Distill: return "distill";
  }
  return "?";
}

namespace {

// WanStepDistillScheduler (LightX2V, schedulers/wan/step_distill): sigma =
// linspace(1, 0, 1001)[:-1] in float32, shifted in float32, taken at
// 1000 - step for the steps 1000, 1000 - 1000/n, ... (the published 4-step
// list: 1000, 750, 500, 250); the timestep is sigma * 1000 in float32,
// not rounded.
Schedule distill_schedule(int64_t steps, double shift) {
  const at::Tensor sigma = at::linspace(1.0, 0.0, 1001, at::kFloat).slice(0, 0, 1000);
  const at::Tensor shifted = sigma * shift / (sigma * (shift - 1.0) + 1.0);
  Schedule s;
  for (int64_t i = 0; i < steps; ++i) {
    const at::Tensor at_step = shifted[1000 * i / steps];  // index 1000 - step
    s.sigmas.push_back(at_step.item<float>());
    s.timesteps.push_back(static_cast<double>((at_step * 1000.0).item<float>()));
  }
  s.sigmas.push_back(0.0f);
  return s;
}

}  // namespace

Schedule make_schedule(SamplerKind kind, int64_t steps, double shift) {
  if (steps < 1 || steps > 1000) throw Error(concat("steps must be in 1..1000, got ", steps));
  if (!(shift > 0) || !std::isfinite(shift)) throw Error(concat("shift must be a positive number, got ", shift));
  if (kind == SamplerKind::Distill) return distill_schedule(steps, shift);
  // FlowUniPCMultistepScheduler: sigma_max = sigmas[0] of 1 - linspace(1, 1/1000, 1000)
  // reversed, i.e. 0.999 stored as float32.
  const double start = kind == SamplerKind::UniPC ? static_cast<double>(0.999f) : 1.0;
  Schedule s;
  for (int64_t i = 0; i < steps; ++i) {
    // numpy linspace: start + i * (stop - start) / n, with stop = 0.
    const double step = (0.0 - start) / static_cast<double>(steps);
    const double sigma = start + static_cast<double>(i) * step;
    const double shifted = shift * sigma / (1.0 + (shift - 1.0) * sigma);
    s.timesteps.push_back(static_cast<double>(static_cast<int64_t>(shifted * 1000.0)));
    s.sigmas.push_back(static_cast<float>(shifted));
  }
  s.sigmas.push_back(0.0f);
  return s;
}

void Sampler::begin_at(int64_t step) {
  if (index_ != begin_ || step < 0 || step > steps()) throw Error(concat("sampler: cannot begin at step ", step));
  index_ = begin_ = step;
}

at::Tensor Sampler::step(const at::Tensor& velocity, const at::Tensor& sample) {
  if (index_ >= steps()) throw Error("sampler: step() called after the last step");
  at::Tensor out = do_step(velocity.to(at::kFloat), sample.to(at::kFloat));
  ++index_;
  return out;
}

namespace {

// lambda = log(alpha) - log(sigma) with alpha = 1 - sigma (log-SNR / 2).
float lambda_of(float sigma) { return std::log(1.0f - sigma) - std::log(sigma); }

// FlowUniPCMultistepScheduler (solver_order 2, bh2, predict_x0,
// lower_order_final): the corrector (UniC) refines the current sample with
// the new x0 before the predictor (UniP) steps from it.
class UniPCSampler final : public Sampler {
 public:
  using Sampler::Sampler;

 private:
  at::Tensor do_step(const at::Tensor& v, const at::Tensor& x_in) override {
    const int64_t i = index_;
    at::Tensor x0 = x_in - sigma(i) * v;
    at::Tensor x = x_in;
    info_ = StepInfo{};
    if (taken() > 0) {
      x = correct(x0, i);
      info_.corrector_order = last_order_;
    }
    x0_prev2_ = x0_prev_;
    x0_prev_ = x0;
    const int order = static_cast<int>(std::min<int64_t>({2, steps() - i, taken() + 1}));
    last_order_ = order;
    last_sample_ = x;
    info_.x0 = x0;
    info_.corrected = x;
    info_.order = order;
    return predict(x, i, order);
  }

  // multistep_uni_p_bh_update; x0_prev_ is this step's x0, x0_prev2_ the last.
  at::Tensor predict(const at::Tensor& x, int64_t i, int order) const {
    const float sigma_t = sigma(i + 1), sigma_s0 = sigma(i), alpha_t = 1.0f - sigma_t;
    const float h = lambda_of(sigma_t) - lambda_of(sigma_s0);
    const float hh = -h, h_phi_1 = std::expm1(hh), B_h = std::expm1(hh);
    const at::Tensor& m0 = x0_prev_;
    at::Tensor x_t = (sigma_t / sigma_s0) * x - (alpha_t * h_phi_1) * m0;
    if (order == 2) {
      const float rk = (lambda_of(sigma(i - 1)) - lambda_of(sigma_s0)) / h;
      at::Tensor d1 = (x0_prev2_ - m0) / rk;
      x_t = x_t - (alpha_t * B_h) * (0.5f * d1);  // order 2 uses the fixed rho = 0.5
    }
    return x_t;
  }

  // multistep_uni_c_bh_update with the previous step's order.
  at::Tensor correct(const at::Tensor& x0_now, int64_t i) const {
    const float sigma_t = sigma(i), sigma_s0 = sigma(i - 1), alpha_t = 1.0f - sigma_t;
    const float lambda_s0 = lambda_of(sigma_s0);
    const float h = lambda_of(sigma_t) - lambda_s0;
    const float hh = -h, h_phi_1 = std::expm1(hh), B_h = std::expm1(hh);
    const at::Tensor& m0 = x0_prev_;
    at::Tensor x_t = (sigma_t / sigma_s0) * last_sample_ - (alpha_t * h_phi_1) * m0;
    at::Tensor d1_t = x0_now - m0;
    if (last_order_ == 1) return x_t - (alpha_t * B_h) * (0.5f * d1_t);
    // Order 2: rhos solve [[1, 1], [rk, 1]] rho = b with
    // b_k = h_phi_k * k! / B_h, h_phi_1' = expm1(hh)/hh - 1, h_phi_2' = h_phi_1'/hh - 1/2.
    const float rk = (lambda_of(sigma(i - 2)) - lambda_s0) / h;
    float h_phi_k = h_phi_1 / hh - 1.0f;
    const float b0 = h_phi_k * 1.0f / B_h;
    h_phi_k = h_phi_k / hh - 0.5f;
    const float b1 = h_phi_k * 2.0f / B_h;
    const double det = 1.0 - static_cast<double>(rk);
    const float rho0 = static_cast<float>((static_cast<double>(b0) - b1) / det);
    const float rho1 = static_cast<float>((static_cast<double>(b1) - static_cast<double>(rk) * b0) / det);
    at::Tensor d1 = (x0_prev2_ - m0) / rk;
    return x_t - (alpha_t * B_h) * (rho0 * d1 + rho1 * d1_t);
  }

  at::Tensor x0_prev_, x0_prev2_, last_sample_;
  int last_order_ = 0;
};

// FlowDPMSolverMultistepScheduler (dpmsolver++, order 2, midpoint, first
// order on the first and the last step).
class DPMppSampler final : public Sampler {
 public:
  using Sampler::Sampler;

 private:
  at::Tensor do_step(const at::Tensor& v, const at::Tensor& x) override {
    const int64_t i = index_;
    at::Tensor m0 = x - sigma(i) * v;
    const int order = (taken() == 0 || i == steps() - 1) ? 1 : 2;
    const float sigma_t = sigma(i + 1), sigma_s0 = sigma(i), alpha_t = 1.0f - sigma_t;
    const float lambda_s0 = lambda_of(sigma_s0);
    const float h = lambda_of(sigma_t) - lambda_s0;
    const float coeff = alpha_t * (std::exp(-h) - 1.0f);
    at::Tensor x_t = (sigma_t / sigma_s0) * x - coeff * m0;
    if (order == 2) {
      const float r0 = (lambda_s0 - lambda_of(sigma(i - 1))) / h;
      x_t = x_t - (0.5f * coeff) * ((1.0f / r0) * (m0 - m_prev_));
    }
    m_prev_ = m0;
    info_ = StepInfo{};
    info_.x0 = m0;
    info_.order = order;
    return x_t;
  }

  at::Tensor m_prev_;
};

// x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v_i.
class EulerSampler final : public Sampler {
 public:
  using Sampler::Sampler;

 private:
  at::Tensor do_step(const at::Tensor& v, const at::Tensor& x) override {
    const int64_t i = index_;
    info_ = StepInfo{};
    info_.x0 = x - sigma(i) * v;
    return x + (sigma(i + 1) - sigma(i)) * v;
  }
};

// WanStepDistillScheduler.step_post: x0 = x - sigma_i v, then re-noised to
// the next sigma along v, x = x0 + v sigma_{i+1} (x0 itself at the last step):
// Euler in two roundings, kept as the reference writes it.
class DistillSampler final : public Sampler {
 public:
  using Sampler::Sampler;

 private:
  at::Tensor do_step(const at::Tensor& v, const at::Tensor& x) override {
    const int64_t i = index_;
    info_ = StepInfo{};
    info_.x0 = x - v * sigma(i);
    return i + 1 == steps() ? info_.x0 : info_.x0 + v * sigma(i + 1);
  }
};

}  // namespace

std::unique_ptr<Sampler> Sampler::create(SamplerKind kind, int64_t steps, double shift) {
  Schedule s = make_schedule(kind, steps, shift);
  switch (kind) {
    case SamplerKind::UniPC: return std::unique_ptr<Sampler>(new UniPCSampler(std::move(s)));
    case SamplerKind::DPMpp: return std::unique_ptr<Sampler>(new DPMppSampler(std::move(s)));
    case SamplerKind::Euler: return std::unique_ptr<Sampler>(new EulerSampler(std::move(s)));
    case SamplerKind::Distill: return std::unique_ptr<Sampler>(new DistillSampler(std::move(s)));
  }
  throw Error("unknown sampler");
}

}  // namespace kino
