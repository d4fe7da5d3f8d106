#include "model/sampler.h"

#include "common/error.h"

namespace grpo {

int64_t sample_token(const at::Tensor& logits, const SamplingParams& p, at::Generator& gen) {
  if (p.temperature < 0) throw InputError("temperature must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw InputError("top_p must be in (0, 1]");
  if (p.top_k < 0) throw InputError("top_k must be >= 0");
  if (p.temperature == 0) return logits.argmax().item<int64_t>();
  at::Tensor probs = (logits.to(at::kDouble) / p.temperature).softmax(-1);  // [V]
  if (p.top_k > 0 && p.top_k < probs.size(0)) {
    double kth = std::get<0>(probs.topk(p.top_k)).min().item<double>();
    probs = probs.masked_fill(probs < kth, 0.0);
  }
  if (p.top_p < 1) {
    auto [sorted, order] = probs.sort(/*dim=*/-1, /*descending=*/true);  // [V] each
    double mass = p.top_p * sorted.sum().item<double>();
    at::Tensor keep_sorted = (sorted.cumsum(-1) - sorted) < mass;  // the more likely tokens hold < mass
    at::Tensor keep = at::zeros_like(keep_sorted).scatter(0, order, keep_sorted);
    probs = probs.masked_fill(keep.logical_not(), 0.0);
  }
  return at::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
}

}  // namespace grpo
