// Choosing the next token from logits: greedy, or temperature / top-k / top-p sampling with an
// explicit, seeded generator (the same seed gives the same tokens).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace grpo {

struct SamplingParams {
  double temperature = 0.0;  // 0: greedy (argmax)
  double top_p = 1.0;        // keep the smallest set of most likely tokens with mass >= top_p
  int64_t top_k = 0;         // keep the k most likely tokens (0: all)
  uint64_t seed = 0;
};

// logits: [V]. Order as HF: temperature, then top-k, then top-p, then a draw from `gen`.
int64_t sample_token(const at::Tensor& logits, const SamplingParams& p, at::Generator& gen);

}  // namespace grpo
