// Autoregressive generation of one sequence over the latent cache: prefill the prompt (naive MLA),
// then one token per step (absorbed MLA), until max_new_tokens or a stop token.
#pragma once
#include <cstdint>
#include <vector>

#include "model/deepseek.h"
#include "model/sampler.h"

namespace grpo {

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  SamplingParams sampling;
  std::vector<int64_t> stop_ids;  // generation ends after emitting one of these (it is kept)
};

// The generated tokens only (not the prompt). Throws InputError for an empty prompt.
std::vector<int64_t> generate(const DeepseekModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options);

}  // namespace grpo
