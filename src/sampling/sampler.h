// Flow-matching samplers over sigma in [0, 1] (x_sigma = (1 - sigma) x0 +
// sigma * noise, the model predicts v = noise - x0). UniPC and DPM-Solver++
// follow Wan's fm_solvers*.py step for step; Euler is the plain flow ODE step.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "sampling/sampler_kind.h"

namespace kino {

struct Schedule {
  // What the model sees, one per step: whole numbers (the reference
  // truncates) but for the distill sampler's, which stay fractional.
  std::vector<double> timesteps;
  std::vector<float> sigmas;       // steps + 1 entries, ending at 0
};

// UniPC: sigma = linspace(sigma_max, 0, steps + 1)[:-1] with sigma_max =
// float32(0.999); DPM++ and Euler: linspace(1, 0, steps + 1)[:-1]. Then
// sigma' = shift * sigma / (1 + (shift - 1) * sigma) in float64, timesteps =
// int64(sigma' * 1000) (truncated), sigmas = float32([sigma'..., 0]).
Schedule make_schedule(SamplerKind kind, int64_t steps, double shift);

class Sampler {
 public:
  // What the last step did, for tests and diagnostics.
  struct StepInfo {
    at::Tensor x0;         // data prediction x - sigma * v
    at::Tensor corrected;  // UniPC: the sample after the corrector
    int order = 1;         // predictor order
    int corrector_order = 0;
  };

  static std::unique_ptr<Sampler> create(SamplerKind kind, int64_t steps, double shift);
  virtual ~Sampler() = default;

  const Schedule& schedule() const { return schedule_; }
  int64_t steps() const { return static_cast<int64_t>(schedule_.timesteps.size()); }
  int64_t step_index() const { return index_; }
  // Starts the schedule at `step` (video-to-video), as a fresh sampler:
  // multistep history and low orders count from there.
  void begin_at(int64_t step);
  // Advances the sample by one step given the model's velocity at it.
  at::Tensor step(const at::Tensor& velocity, const at::Tensor& sample);
  const StepInfo& last_step() const { return info_; }

 protected:
  explicit Sampler(Schedule schedule) : schedule_(std::move(schedule)) {}
  virtual at::Tensor do_step(const at::Tensor& velocity, const at::Tensor& sample) = 0;
  float sigma(int64_t i) const { return schedule_.sigmas[static_cast<size_t>(i)]; }
  int64_t taken() const { return index_ - begin_; }  // steps since the start

  Schedule schedule_;
  int64_t index_ = 0, begin_ = 0;
  StepInfo info_;
};

}  // namespace kino
