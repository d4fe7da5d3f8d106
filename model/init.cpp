#include "model/init.h"

#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"

namespace grpo {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void init_weights(DeepseekModel& model, uint64_t seed) {
  if (model.options().fp8)
    throw InputError("init_weights: an FP8 model is for inference; initialise a float model and load_state() it");
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std = model.config().initializer_range;
  for (auto& [name, t] : model.named_parameters()) {
    if (ends_with(name, "e_score_correction_bias")) {
      t->zero_();
    } else if (t->dim() == 1) {  // every 1-d parameter is an RMSNorm weight
      t->fill_(1.0);
    } else {
      // Draw in fp32 so a seed gives the same model whatever the storage dtype.
      t->copy_(at::empty(t->sizes(), at::kFloat).normal_(0.0, std, gen));
    }
  }
}

}  // namespace grpo
