// GRPO's formulas (docs/architecture.md §4) as pure functions on tensors. The trainer calls them; tests pin them
// with hand-computed values and finite-difference gradients.
//
// Shapes: B sequences (G per prompt, groups contiguous), T tokens; `mask` [B, T] is 1 on response
// tokens that count and 0 on padding/prompt.
#pragma once
#include <string>

#include <ATen/ATen.h>

namespace grpo {

// ---- advantages ---------------------------------------------------------------------------

enum class AdvantageEstimator {
  kGrpo,         // (r - mean) / (std + eps), std unbiased; a group of one: mean 0, std 1
  kDrGrpo,       // r - mean                      (norm_adv_by_std: false)
  kRloo,         // G/(G-1) * (r - mean)           (leave-one-out baseline)
  kReinforcePP,  // r whitened over the whole batch (REINFORCE++)
};
AdvantageEstimator parse_advantage_estimator(const std::string& name);  // "grpo", "dr_grpo", "rloo", "reinforce_pp"

// rewards [B] with B = n_groups * group_size, groups contiguous -> advantages [B] (float64 math).
at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, AdvantageEstimator estimator,
                            double eps = 1e-6);

// ---- losses ------------------------------------------------------------------------------

enum class LossAggregation {
  kTokenMean,            // sum over all tokens / number of tokens in the mini-batch (DAPO)
  kSeqMeanTokenMean,     // mean over sequences of each sequence's token mean (original GRPO)
  kSeqMeanTokenSum,      // mean over sequences of each sequence's token sum
  kSeqMeanTokenSumNorm,  // sum of all tokens / (B * norm_length) (Dr. GRPO)
};
LossAggregation parse_loss_aggregation(const std::string& name);  // "token-mean", "seq-mean-token-mean", ...

// per_token [B, T], mask [B, T] -> scalar.
at::Tensor aggregate_loss(const at::Tensor& per_token, const at::Tensor& mask, LossAggregation mode,
                          double norm_length = 0);

struct PolicyLossOptions {
  double clip_low = 0.2;     // epsilon_low
  double clip_high = 0.2;    // epsilon_high (> clip_low: DAPO clip-higher, e.g. 0.28)
  double dual_clip_c = 3.0;  // dual clip for A < 0; <= 1 disables it
  LossAggregation aggregation = LossAggregation::kTokenMean;
  double norm_length = 0;  // for kSeqMeanTokenSumNorm
  double tis_cap = 0;      // > 0: truncated importance sampling weight min(pi_old/pi_rollout, cap)
};

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct PolicyLossResult {
  at::Tensor loss;           // scalar, differentiable w.r.t. logp
  double clip_fraction = 0;  // share of counted tokens where the clipped branch was taken
  double dual_clip_fraction = 0;
  double approx_kl = 0;  // mean over tokens of 0.5 * (logp - old_logp)^2
};

// logp, old_logp, mask: [B, T]; advantages [B]; rollout_logp [B, T] (only read when tis_cap > 0);
// keep [B, T] (0/1, optional: the off-policy masks, learner/off_policy.h) zeroes the loss of the
// tokens it masks without changing the normaliser.
PolicyLossResult policy_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& advantages,
                             const at::Tensor& mask, const PolicyLossOptions& options,
                             const at::Tensor& rollout_logp = {}, const at::Tensor& keep = {});

enum class KlEstimator { kK1, kK2, kK3 };
KlEstimator parse_kl_estimator(const std::string& name);  // "k1", "k2", "k3" (also "low_var_kl" = k3)

// Per-token KL estimate of pi_theta vs pi_ref from log-probs [B, T] (delta = logp - ref_logp,
// clamped to ±20; k3 clamped to ±10).
at::Tensor kl_penalty(const at::Tensor& logp, const at::Tensor& ref_logp, KlEstimator estimator);

// Entropy of softmax(logits) over the last dim: logsumexp(z) - sum softmax(z) * z. [.., V] -> [..]
at::Tensor entropy_from_logits(const at::Tensor& logits);

}  // namespace grpo
