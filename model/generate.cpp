#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "common/error.h"

namespace grpo {

std::vector<int64_t> generate(const DeepseekModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options) {
  if (prompt.empty()) throw InputError("generate: empty prompt");
  if (options.max_new_tokens < 0) throw InputError("generate: max_new_tokens must be >= 0");
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.sampling.seed);
  const int64_t n = static_cast<int64_t>(prompt.size());
  LatentCache cache = model.make_cache(1, n + std::max<int64_t>(options.max_new_tokens, 1));
  at::Tensor ids = at::tensor(prompt, at::kLong).unsqueeze(0);  // [1, n]
  std::vector<int64_t> out;
  at::Tensor logits = model.forward(ids, {}, &cache);  // [1, n, V]
  while (static_cast<int64_t>(out.size()) < options.max_new_tokens) {
    int64_t next = sample_token(logits[0][-1], options.sampling, gen);
    out.push_back(next);
    bool stop = std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end();
    if (stop || static_cast<int64_t>(out.size()) == options.max_new_tokens) break;
    logits = model.forward(at::full({1, 1}, next, at::kLong), {}, &cache);
  }
  return out;
}

}  // namespace grpo
