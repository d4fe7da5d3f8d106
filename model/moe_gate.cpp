#include "model/moe_gate.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
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

// Without grad mode, sigmoid scoring without groups on fp32 CPU logits (DeepSeek-V3 with
// n_group 1): the gate row by row in plain code, a few operations per row instead of a dozen ATen
// calls per layer. Its own fixed arithmetic (same formulas): σ(v) = 1 / (1 + e^−v) as
// sigmoid_invariant; the k largest biased scores, ties to the lower id; the weights' sum in
// ascending expert order.
bool gate_rows_apply(const at::Tensor& logits, const GateSpec& spec) {
  return !at::GradMode::is_enabled() && !portable_ops(logits) && logits.scalar_type() == at::kFloat &&
         logits.dim() == 2 && spec.scoring == ScoringFunc::kSigmoid && spec.n_group <= 1 && spec.top_k >= 1 &&
         spec.top_k <= logits.size(1);
}

float sigmoid_scalar(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// weights[j] of the experts[0..k) from the row's scores (gate_weights' rules).
void row_weights(const float* score, const int64_t* experts, int64_t k, const GateSpec& spec, float* weights) {
  for (int64_t j = 0; j < k; ++j) weights[j] = score[experts[j]];
  const bool normalise = spec.norm_topk_prob && (spec.family == ModelFamily::kDeepseekV3 || spec.top_k > 1);
  if (normalise) {
    float sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += weights[j];
    const float denom = sum + 1e-20f;
    for (int64_t j = 0; j < k; ++j) weights[j] = weights[j] / denom;
  }
  if (spec.family == ModelFamily::kDeepseekV3 || !normalise) {
    const float f = static_cast<float>(spec.routed_scaling_factor);
    for (int64_t j = 0; j < k; ++j) weights[j] = weights[j] * f;
  }
}

// Row by row: the router's choice (ascending ids) and its weights. logits [N, E] fp32 contiguous;
// bias [E] or null.
Routing gate_rows(const at::Tensor& logits, const float* bias, const GateSpec& spec) {
  const int64_t n = logits.size(0), e = logits.size(1), k = spec.top_k;
  at::Tensor experts = at::empty({n, k}, logits.options().dtype(at::kLong));
  at::Tensor weights = at::empty({n, k}, logits.options());
  const float* l = logits.data_ptr<float>();
  int64_t* ids = experts.data_ptr<int64_t>();
  float* w = weights.data_ptr<float>();
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> score(e), choice(e);
    std::vector<char> taken(e);
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t i = 0; i < e; ++i) {
        score[i] = sigmoid_scalar(l[r * e + i]);
        choice[i] = bias ? score[i] + bias[i] : score[i];
      }
      std::fill(taken.begin(), taken.end(), 0);
      int64_t* row = ids + r * k;
      for (int64_t j = 0; j < k; ++j) {  // the j-th largest choice, ties to the lower id
        int64_t best = -1;
        for (int64_t i = 0; i < e; ++i)
          if (!taken[i] && (best < 0 || choice[i] > choice[best])) best = i;
        taken[best] = 1;
        row[j] = best;
      }
      std::sort(row, row + k);
      row_weights(score.data(), row, k, spec, w + r * k);
    }
  });
  return {experts, weights};
}

// replay_gate's weights row by row for given experts [N, k].
at::Tensor replay_rows(const at::Tensor& logits, const at::Tensor& experts, const GateSpec& spec) {
  const int64_t n = logits.size(0), e = logits.size(1), k = experts.size(1);
  const at::Tensor ids = experts.contiguous();
  const int64_t* check = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n * k; ++i)
    if (check[i] < 0 || check[i] >= e)
      throw InputError("routing replay: expert id " + std::to_string(check[i]) + " outside [0, " + std::to_string(e) +
                       ")");
  at::Tensor weights = at::empty({n, k}, logits.options());
  const float* l = logits.data_ptr<float>();
  const int64_t* id = ids.data_ptr<int64_t>();
  float* w = weights.data_ptr<float>();
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> score(e);
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t i = 0; i < e; ++i) score[i] = sigmoid_scalar(l[r * e + i]);
      row_weights(score.data(), id + r * k, k, spec, w + r * k);
    }
  });
  return weights;
}

}  // namespace

Routing moe_gate(const at::Tensor& logits, const at::Tensor& bias, const GateSpec& spec) {
  if (gate_rows_apply(logits, spec)) {
    const at::Tensor l = logits.contiguous();
    const bool biased = spec.method == TopkMethod::kNoauxTc && bias.defined();
    const at::Tensor b = biased ? bias.to(at::kFloat).contiguous() : at::Tensor();
    return gate_rows(l, biased ? b.data_ptr<float>() : nullptr, spec);
  }
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
  if (gate_rows_apply(logits, spec) && experts.dim() == 2 && experts.size(0) == logits.size(0) &&
      experts.scalar_type() == at::kLong) {
    const at::Tensor l = logits.contiguous();
    return {experts, replay_rows(l, experts, spec)};
  }
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
