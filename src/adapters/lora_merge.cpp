#include "adapters/lora_merge.h"

#include <map>
#include <memory>
#include <vector>

#include "adapters/lora_plan.h"
#include "kino/error.h"

namespace kino {

namespace {

// One planned file, open, with its terms by target.
struct OpenLora {
  const LoraPlan* plan;
  TensorSet file;
  std::multimap<std::string, const LoraTerm*> terms;
};

at::Tensor factor(const OpenLora& l, const LoraTerm& t, const std::string& role) {
  return to_tensor(*l.file.find(t.parts.at(role))).to(at::kFloat);
}
at::Tensor matrix(const at::Tensor& f) { return f.dim() < 2 ? f.reshape({-1, 1}) : f.flatten(1); }

// alpha / dim, 1 without an alpha (or a dim).
double scale(const OpenLora& l, const LoraTerm& t, int64_t dim) {
  if (!t.parts.count("alpha") || dim <= 0) return 1.0;
  return factor(l, t, "alpha").reshape({}).item<double>() / static_cast<double>(dim);
}

// W (float32, the parameter as loaded or as the LoRAs before left it) patched
// by one term at strength s.
void apply(const OpenLora& l, const LoraTerm& t, double s, at::Tensor& w) {
  switch (t.kind) {
    case LoraKind::LowRank:
    case LoraKind::DoRA: {
      const at::Tensor up = matrix(factor(l, t, "up")), down = matrix(factor(l, t, "down"));
      const double k = scale(l, t, down.size(0));
      if (t.kind == LoraKind::LowRank) {
        // W += s k up @ down, in place (no W-sized temporary).
        w.view({up.size(0), down.size(1)}).addmm_(up, down, 1.0, s * k);
        return;
      }
      const at::Tensor delta = at::mm(up, down).reshape(w.sizes()) * k;
      // DoRA: the patched weight's columns rescaled to dora_scale / their
      // norm; the strength blends the result with W (it does not scale the
      // product).
      at::Tensor patched = w + delta;
      const at::Tensor columns = matrix(patched);
      const at::Tensor norm = columns.norm(2, {0}, true);  // [1, in]
      patched = (columns * (factor(l, t, "dora_scale").reshape({1, -1}) / norm)).reshape(w.sizes());
      if (s == 1.0) w.copy_(patched);
      else w.add_(patched - w, s);
      return;
    }
    case LoraKind::LoHa: {
      const at::Tensor b1 = matrix(factor(l, t, "hada_w1_b"));
      const at::Tensor product =
          at::mm(matrix(factor(l, t, "hada_w1_a")), b1) * at::mm(matrix(factor(l, t, "hada_w2_a")), matrix(factor(l, t, "hada_w2_b")));
      w.add_(product.reshape(w.sizes()), s * scale(l, t, b1.size(0)));
      return;
    }
    case LoraKind::LoKr: {
      // dim: the rank of the factorised w2 (else w1's); none when neither is.
      int64_t dim = 0;
      auto side = [&](const std::string& n) {
        if (t.parts.count(n)) return matrix(factor(l, t, n));
        const at::Tensor b = matrix(factor(l, t, n + "_b"));
        dim = b.size(0);
        return at::mm(matrix(factor(l, t, n + "_a")), b);
      };
      const at::Tensor w1 = side("lokr_w1"), w2 = side("lokr_w2");
      w.add_(at::kron(w1, w2).reshape(w.sizes()), s * scale(l, t, dim));
      return;
    }
    case LoraKind::Diff: w.add_(factor(l, t, "diff").reshape(w.sizes()), s); return;
    case LoraKind::SetWeight: w.copy_(factor(l, t, "set").reshape(w.sizes())); return;
  }
}

std::shared_ptr<std::vector<OpenLora>> open_loras(const ModelManifest& m, const std::string& component) {
  auto open = std::make_shared<std::vector<OpenLora>>();
  for (const LoraPlan* p : loras_for(m, component)) {
    OpenLora l{p, TensorSet::open(p->spec.path), {}};
    for (const LoraTerm& t : p->terms) l.terms.emplace(t.target, &t);
    open->push_back(std::move(l));
  }
  return open;
}

}  // namespace

WeightPatch lora_patch(const ModelManifest& m, const std::string& component) {
  const std::shared_ptr<std::vector<OpenLora>> open = open_loras(m, component);
  if (open->empty()) return {};
  return [open](const std::string& official, at::Tensor& w) {
    for (const OpenLora& l : *open) {
      auto [first, last] = l.terms.equal_range(official);
      for (auto it = first; it != last; ++it) apply(l, *it->second, l.plan->spec.strength, w);
    }
  };
}

LowRankSource lora_low_rank(const ModelManifest& m, const std::string& component) {
  const std::shared_ptr<std::vector<OpenLora>> open = open_loras(m, component);
  if (open->empty()) return {};
  return [open](const std::string& official) {
    std::vector<LowRankDelta> out;
    for (const OpenLora& l : *open) {
      auto [first, last] = l.terms.equal_range(official);
      for (auto it = first; it != last; ++it) {
        const LoraTerm& t = *it->second;
        if (t.kind != LoraKind::LowRank) return std::vector<LowRankDelta>{};
        const at::Tensor up = matrix(factor(l, t, "up")), down = matrix(factor(l, t, "down"));
        out.push_back({down, up, l.plan->spec.strength * scale(l, t, down.size(0))});
      }
    }
    return out;
  };
}

}  // namespace kino
