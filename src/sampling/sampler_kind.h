// The samplers by name. No torch here.
#pragma once
#include <string>

namespace kino {

enum class SamplerKind { UniPC, DPMpp, Euler };

SamplerKind parse_sampler(const std::string& name);  // "unipc", "dpm++", "euler"; kino::Error otherwise
std::string sampler_name(SamplerKind kind);

}  // namespace kino
