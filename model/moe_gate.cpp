#include "model/moe_gate.h"

#include <ATen/core/grad_mode.h>
#include <limits>

#include "model/batch_invariant.h"

namespace grpo {

GateSpec GateSpec::from(const ModelConfig& c) {
  GateSpec s;
  s.family = c.family;
  s.scoring = c.scoring_func;
  s.method = c.topk_method;
  s.top_k = c.num_experts_per_tok;
  s.n_group = c.n_group;
  s.topk_group = c.topk_group;
  s.norm_topk_prob = c.norm_topk_prob;
  s.routed_scaling_factor = c.routed_scaling_factor;
  return s;
}

namespace {

// Keeps the experts of the `topk_group` best groups (by group_score), -inf elsewhere.
// choice: [N, E]; group_score: [N, G].
at::Tensor mask_to_best_groups(const at::Tensor& choice, const at::Tensor& group_score, int64_t topk_group) {
  int64_t n = choice.size(0), e = choice.size(1), g = group_score.size(1);
  at::Tensor kept = std::get<1>(group_score.topk(topk_group, -1));  // [N, topk_group]
  at::Tensor group_mask = at::zeros({n, g}, choice.options().dtype(at::kBool)).scatter_(1, kept, true);
  at::Tensor expert_mask = group_mask.unsqueeze(-1).expand({n, g, e / g}).reshape({n, e});  // [N, E]
  return choice.masked_fill(expert_mask.logical_not(), -std::numeric_limits<double>::infinity());
}

at::Tensor gate_scores(const at::Tensor& logits, const GateSpec& spec) {
  return spec.scoring == ScoringFunc::kSoftmax ? logits.softmax(-1) : sigmoid_invariant(logits);  // [N, E]
}

// The weights of `experts` ([N, k]) from the un-biased scores ([N, E]): see moe_gate.h.
at::Tensor gate_weights(const at::Tensor& scores, const at::Tensor& experts, const GateSpec& spec) {
  at::Tensor weights = scores.gather(1, experts);  // [N, k]
  bool normalise = spec.norm_topk_prob && (spec.family == ModelFamily::kDeepseekV3 || spec.top_k > 1);
  if (normalise) weights = weights / (weights.sum(-1, /*keepdim=*/true) + 1e-20);
  if (spec.family == ModelFamily::kDeepseekV3 || !normalise) weights = weights * spec.routed_scaling_factor;
  return weights;
}

}  // namespace

Routing moe_gate(const at::Tensor& logits, const at::Tensor& bias, const GateSpec& spec) {
  int64_t n = logits.size(0), e = logits.size(1);
  at::Tensor scores = gate_scores(logits, spec);  // [N, E]

  at::Tensor experts;  // [N, k]
  {
    at::NoGradGuard no_grad;  // selection is discrete; only the weights carry gradients
    at::Tensor choice = scores.detach();
    if (spec.method == TopkMethod::kNoauxTc) {
      if (bias.defined()) choice = choice + bias.to(choice.scalar_type());
      if (spec.n_group > 1) {
        at::Tensor grouped = choice.view({n, spec.n_group, e / spec.n_group});
        at::Tensor group_score = std::get<0>(grouped.topk(2, -1)).sum(-1);  // [N, G]
        choice = mask_to_best_groups(choice, group_score, spec.topk_group);
      }
    } else if (spec.method == TopkMethod::kGroupLimitedGreedy && spec.n_group > 1) {
      at::Tensor group_score = std::get<0>(choice.view({n, spec.n_group, e / spec.n_group}).max(-1));
      choice = mask_to_best_groups(choice, group_score, spec.topk_group);
    }
    // Ascending ids: the layout of Routes, so that a replayed route sums its weights in the same order.
    experts = std::get<0>(std::get<1>(choice.topk(spec.top_k, -1)).sort(-1));
  }
  return {experts, gate_weights(scores, experts, spec)};
}

Routing replay_gate(const at::Tensor& logits, const at::Tensor& experts, const GateSpec& spec) {
  return {experts, gate_weights(gate_scores(logits, spec), experts, spec)};
}

at::Tensor expert_load(const Routing& routing, int64_t num_experts) {
  return routing.experts.reshape({-1}).bincount({}, num_experts);
}

at::Tensor balanced_bias(const at::Tensor& bias, const at::Tensor& load, double gamma) {
  at::Tensor l = load.to(at::kDouble);
  return bias + (gamma * (l.mean() - l).sign()).to(bias.scalar_type());
}

}  // namespace grpo
