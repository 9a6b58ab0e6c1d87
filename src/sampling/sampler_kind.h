// The samplers by name. No torch here.
#pragma once
#include <string>

namespace kino {

// Distill: LightX2V's WanStepDistillScheduler, for step-distilled models
// (the lightx2v 4-step LoRAs): a fixed step list, Euler in x0 form.
enum class SamplerKind { UniPC, DPMpp, Euler, Distill };

SamplerKind parse_sampler(const std::string& name);  // "unipc", "dpm++", "euler", "distill"; kino::Error otherwise
std::string sampler_name(SamplerKind kind);

}  // namespace kino
