// DeepSeekMoE routing as a pure function: router logits -> (expert ids, expert weights).
// docs/architecture.md §3: V3 (noaux_tc, sigmoid) selects with scores + e_score_correction_bias inside the
// topk_group groups ranked by the sum of their top-2 biased scores, and weighs with the unbiased
// scores; V2 (greedy / group_limited_greedy, softmax) takes the top-k scores (inside the groups
// with the largest max score). Experts of unkept groups are excluded with -inf.
//
// Weights: V3 family: normalised (sum + 1e-20) if norm_topk_prob, then × routed_scaling_factor.
// V2 family (DeepSeek-V2's own rule): normalised if top_k > 1 and norm_topk_prob, otherwise
// × routed_scaling_factor (never both).
#pragma once
#include <ATen/ATen.h>

#include "model/model_config.h"

namespace grpo {

struct GateSpec {
  ModelFamily family = ModelFamily::kDeepseekV3;
  ScoringFunc scoring = ScoringFunc::kSigmoid;
  TopkMethod method = TopkMethod::kNoauxTc;
  int64_t top_k = 1, n_group = 1, topk_group = 1;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;

  static GateSpec from(const ModelConfig& c);
};

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct Routing {
  at::Tensor experts;  // [N, k] int64, ascending in each row
  at::Tensor weights;  // [N, k] in the logits' dtype; differentiable w.r.t. the logits
};

// logits: [N, E] (fp32 or fp64: the router runs in at least fp32); bias: [E] or undefined.
Routing moe_gate(const at::Tensor& logits, const at::Tensor& bias, const GateSpec& spec);

// Routing replay (R3): the given experts, with weights recomputed from the current router's
// scores over them by moe_gate's rules (scoring function, norm_topk_prob, routed_scaling_factor;
// no bias), differentiable w.r.t. the logits. Replaying moe_gate's own choice gives its Routing
// exactly. logits: [N, E]; experts: [N, k] int64 in [0, E) -> Routing{experts, [N, k]}.
Routing replay_gate(const at::Tensor& logits, const at::Tensor& experts, const GateSpec& spec);

// Tokens routed to each expert: [E] int64.
at::Tensor expert_load(const Routing& routing, int64_t num_experts);

// Aux-loss-free balancing (DeepSeek-V3): bias + gamma · sign(mean(load) − load), so overloaded
// experts become less attractive to the selection (weights never see the bias). [E] -> [E].
at::Tensor balanced_bias(const at::Tensor& bias, const at::Tensor& load, double gamma);

}  // namespace grpo
