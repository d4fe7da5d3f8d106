// A slow, obviously-correct float64 DeepSeek V2/V3 forward used only by the tests: one token,
// one head, one expert at a time, written from the model description (docs/architecture.md §3) without any of
// model/'s code except ModelConfig. Rope pairs are rotated in place (DeepSeek's adjacent-pair
// layout when rope_interleave, else (i, i + d/2)), the absorbed/naive MLA split does not exist
// here, and routing is a sort of per-token scores.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace grpo::testing {

// Logits [T, V] (float64) of one sequence `ids` at positions 0..T-1, from HF-named weights.
at::Tensor reference_logits(const ModelConfig& c, const std::map<std::string, at::Tensor>& weights,
                            const std::vector<int64_t>& ids);

// The experts chosen for one token's router logits [E] and their weights (same order),
// by the rules of docs/architecture.md §3 (see moe_gate.h for the normalisation rule of each family).
void reference_route(const ModelConfig& c, const std::vector<double>& logits, const std::vector<double>& bias,
                     std::vector<int64_t>* experts, std::vector<double>* weights);

// Rope inverse frequencies and the cos/sin factor, computed with scalar loops.
std::vector<double> reference_inv_freq(const ModelConfig& c);
double reference_attention_factor(const ModelConfig& c);

}  // namespace grpo::testing
