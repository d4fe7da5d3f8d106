// Off-policy corrections of 2025–2026 for the GRPO loss, as pure functions on tensors, and the
// rollout–trainer mismatch they react to. The trainer (learner/minibatch_loss.h) calls them; tests
// pin them with hand-computed values and finite-difference gradients.
//
// Shapes as in learner/grpo.h: B sequences, T tokens, `mask` [B, T] 1 on the tokens that count.
// Notation: logp = log π_θ (current, differentiable); old_logp = log π_old (the trainer's
// recomputation at the start of the step, no grad); rollout_logp = log μ (what the rollout engine
// sampled from); ref_logp = log π_ref; A_i the advantage of sequence i; |y_i| its token count.
//
// GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization"):
//   s_i = exp( (1/|y_i|) Σ_t (logp − old_logp) )
//   J   = (1/B) Σ_i min( s_i·A_i, clip(s_i, 1 − ε_low, 1 + ε_high)·A_i ),   loss = −J
//   computed in the GSPO-token form s_i,t = sg[s_i]·π_θ(y_t)/sg[π_θ(y_t)] aggregated as
//   seq-mean-token-mean: with one advantage per sequence its value and gradient equal the
//   sequence form's (the paper's GSPO-token section).
// Masked importance sampling (MIS, "rollout rejection sampling" in verl), ρ_t = π_old/μ:
//   token:     keep token t iff ρ_t ∈ [low, high]
//   sequence:  keep sequence i iff ρ_seq = exp Σ_t log ρ_t ∈ [low, high]
//   geometric: keep sequence i iff exp( (1/|y_i|) Σ_t log ρ_t ) ∈ [low, high]
// IcePop (Ling team 2025, "Every Step Evolves: Scaling RL for Trillion-Scale Thinking Model"):
//   keep token t iff ρ_t = π_old/μ ∈ [1/β, β]
// DeepSeek-V3.2 off-policy sequence masking (DeepSeek-AI 2025, "DeepSeek-V3.2: Pushing the Frontier of Open Large
// Language Models", scaling GRPO): the paper's
//   M_i = 0 iff A_i < 0 and (1/|y_i|) Σ_t log(π_old(y_t)/π_θ(y_t)) > δ, its π_old being the
//   sampling policy. Here the sampling policy is μ (rollout_logp) and π_θ is the policy at the start
//   of the step (old_logp): drop sequence i iff A_i < 0 and (1/|y_i|) Σ_t (rollout_logp − old_logp) > δ.
// DeepSeek-V3.2 unbiased KL estimate (same paper and section):
//   D_t = (π_θ/π_old)·( π_ref/π_θ − log(π_ref/π_θ) − 1 )
//   (the k3 estimate reweighted by the importance ratio; its gradient through the ratio makes
//   E_old[∇D_t] = ∇KL(π_θ‖π_ref), which plain k3 does not give).
// Every threshold comparison is made on log-ratios (log ρ against log low, ...), so a ratio exactly
// on a threshold is kept. Masks are 0/1 tensors in mask's dtype, without gradient, and 0 wherever
// `mask` is 0; tokens with mask 0 do not enter any sequence statistic.
#pragma once
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "learner/grpo.h"

namespace grpo {

enum class PolicyLossKind { kPpo, kGspo };
PolicyLossKind parse_policy_loss_kind(const std::string& name);  // "ppo", "gspo"

enum class MisLevel { kOff, kToken, kSequence, kGeometric };
MisLevel parse_mis_level(const std::string& name);  // "off", "token", "sequence", "geometric"

// The corrections a run turns on (trainer.* keys of the same names, learner/trainer_options.h).
struct OffPolicyOptions {
  PolicyLossKind policy_loss = PolicyLossKind::kPpo;
  double gspo_clip_low = 3e-4;  // GSPO's ε_low, ε_high (the paper's values)
  double gspo_clip_high = 4e-4;
  MisLevel mis = MisLevel::kOff;
  double mis_low = 0.5;  // verl's defaults: upper 2.0, lower its reciprocal
  double mis_high = 2.0;
  double icepop_beta = 0;            // 0: off; else > 1
  double offpolicy_mask_delta = -1;  // < 0: off; else δ >= 0
  bool kl_unbiased = false;          // the KL term in the loss: unbiased_kl instead of kl_penalty
  bool offpolicy_mask_on() const { return offpolicy_mask_delta >= 0; }
};

// GSPO's sequence ratios s_i [B] (differentiable in logp); an empty sequence has s_i = 1.
at::Tensor gspo_sequence_ratio(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& mask);

// GSPO's loss −J (seq-mean-token-mean over `mask`); `keep` [B, T] (0/1, optional) zeroes masked tokens'
// terms (value and gradient) without changing the normaliser; s_i stays over all of `mask`. clip_fraction: share of
// counted tokens whose sequence was clipped; dual_clip_fraction 0; approx_kl as in policy_loss. Shapes as
// policy_loss's.
PolicyLossResult gspo_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& advantages,
                           const at::Tensor& mask, double clip_low, double clip_high, const at::Tensor& keep = {});

// MIS keep-mask [B, T] (kOff: `mask`). Needs 0 < low <= high.
at::Tensor mis_keep(const at::Tensor& old_logp, const at::Tensor& rollout_logp, const at::Tensor& mask, MisLevel level,
                    double low, double high);

// IcePop keep-mask [B, T]. Needs beta > 1.
at::Tensor icepop_keep(const at::Tensor& old_logp, const at::Tensor& rollout_logp, const at::Tensor& mask, double beta);

// DeepSeek-V3.2 off-policy sequence keep-mask [B, T]; advantages [B]. Needs delta >= 0.
at::Tensor offpolicy_sequence_keep(const at::Tensor& old_logp, const at::Tensor& rollout_logp,
                                   const at::Tensor& advantages, const at::Tensor& mask, double delta);

// The product of the keep-masks `o` turns on ([B, T]; `mask` when none is on).
at::Tensor off_policy_keep(const OffPolicyOptions& o, const at::Tensor& old_logp, const at::Tensor& rollout_logp,
                           const at::Tensor& advantages, const at::Tensor& mask);

// DeepSeek-V3.2's unbiased KL estimate per token [B, T], differentiable in logp (log-ratios
// clamped to ±20 like kl_penalty's).
at::Tensor unbiased_kl(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& ref_logp);

// The rollout–trainer mismatch over the tokens of `mask`, Δ = old_logp − rollout_logp:
// "logp_abs_mean", "logp_abs_max" (of |Δ|), "kl_k3" (KL(μ‖π_old) by k3 on the rollout's samples: mean
// of r − 1 − log r, r = e^Δ), and the share of tokens each correction that is on masks or truncates:
// "tis_truncated" (tis_cap > 0: r > tis_cap), "mis_masked", "icepop_masked", "offpolicy_masked".
// Logged as mismatch/<name>. An empty mask gives zeros.
std::map<std::string, double> measure_mismatch(const at::Tensor& old_logp, const at::Tensor& rollout_logp,
                                               const at::Tensor& advantages, const at::Tensor& mask,
                                               const OffPolicyOptions& o, double tis_cap);

// The share of the tokens of `mask` ([B, T]) whose top-k expert set differs between the trainer's
// routers (`chosen`) and the rollout's (`rollout`), both [B, T, L_moe, k] int64 with each set in
// ascending order: "expert_disagreement" over every (token, MoE layer) pair and
// "expert_disagreement/moe_layer<i>" per MoE layer i (model order). Logged as mismatch/<name>.
std::map<std::string, double> expert_disagreement(const at::Tensor& chosen, const at::Tensor& rollout,
                                                  const at::Tensor& mask);

}  // namespace grpo
