// Random initialisation as HF's DeepseekV3PreTrainedModel._init_weights: every linear, embedding
// and router weight ~ normal(0, initializer_range); RMSNorm weights 1; e_score_correction_bias 0.
// Deterministic for a seed (tensors are drawn in named_parameters() order).
// The dense decoder follows LlamaPreTrainedModel._init_weights the same way: linear and embedding
// weights ~ normal(0, initializer_range), biases 0, RMSNorm weights 1.
#pragma once
#include <cstdint>

#include "model/deepseek.h"
#include "model/dense_decoder.h"

namespace grpo {

void init_weights(DeepseekModel& model, uint64_t seed);
void init_weights(DenseDecoder& model, uint64_t seed);

}  // namespace grpo
