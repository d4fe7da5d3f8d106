#include "model/init.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include "common/error.h"

namespace grpo {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Biases and e_score_correction_bias 0, other 1-d tensors (RMSNorm weights) 1, matrices
// ~ normal(0, std) drawn in fp32 so a seed gives the same model whatever the storage dtype.
void init_named(const std::vector<std::pair<std::string, at::Tensor*>>& params, double std, uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, t] : params) {
    if (ends_with(name, "e_score_correction_bias") || ends_with(name, ".bias")) {
      t->zero_();
    } else if (t->dim() == 1) {
      t->fill_(1.0);
    } else {
      t->copy_(at::empty(t->sizes(), at::kFloat).normal_(0.0, std, gen));
    }
  }
}

}  // namespace

void init_weights(CausalLM& model, uint64_t seed) {
  if (model.options().fp8)
    throw InputError("init_weights: an FP8 model is for inference; initialise a float model and load_state() it");
  init_named(model.named_parameters(), model.spec().initializer_range, seed);
}

}  // namespace grpo
