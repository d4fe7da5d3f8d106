// Random initialisation as HF's DeepseekV3PreTrainedModel._init_weights: every linear, embedding
// and router weight ~ normal(0, initializer_range); RMSNorm weights 1; e_score_correction_bias 0.
// Deterministic for a seed (tensors are drawn in named_parameters() order).
// The dense decoder follows LlamaPreTrainedModel._init_weights the same way: linear and embedding
// weights ~ normal(0, initializer_range), biases 0, RMSNorm weights 1.
#pragma once
#include <cstdint>

#include "model/causal_lm.h"

namespace grpo {

// InputError for an FP8 model (it is for inference: initialise a float model and load_state() it).
void init_weights(CausalLM& model, uint64_t seed);

}  // namespace grpo
