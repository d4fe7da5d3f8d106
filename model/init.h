// Random initialisation as HF's DeepseekV3PreTrainedModel._init_weights: every linear, embedding
// and router weight ~ normal(0, initializer_range); RMSNorm weights 1; e_score_correction_bias 0.
// Deterministic for a seed (tensors are drawn in named_parameters() order).
#pragma once
#include <cstdint>

#include "model/deepseek.h"

namespace grpo {

void init_weights(DeepseekModel& model, uint64_t seed);

}  // namespace grpo
