#include "learner/grpo.h"

#include "common/error.h"

namespace grpo {

AdvantageEstimator parse_advantage_estimator(const std::string& name) {
  if (name == "grpo") return AdvantageEstimator::kGrpo;
  if (name == "dr_grpo") return AdvantageEstimator::kDrGrpo;
  if (name == "rloo") return AdvantageEstimator::kRloo;
  if (name == "reinforce_pp") return AdvantageEstimator::kReinforcePP;
  throw InputError("advantage estimator '" + name + "': expected one of grpo, dr_grpo, rloo, reinforce_pp");
}

at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, AdvantageEstimator estimator, double eps) {
  TORCH_CHECK(rewards.dim() == 1, "rewards must be [B]");
  TORCH_CHECK(group_size >= 1 && rewards.size(0) % group_size == 0, "B must be a multiple of group_size");
  auto r = rewards.to(at::kDouble).view({-1, group_size});  // [N, G]
  at::Tensor adv;
  switch (estimator) {
    case AdvantageEstimator::kGrpo: {
      if (group_size == 1) {
        adv = r;  // mean 0, std 1 by convention
      } else {
        auto mean = r.mean(1, true);
        auto std = r.std(1, /*unbiased=*/true, true);
        adv = (r - mean) / (std + eps);
      }
      break;
    }
    case AdvantageEstimator::kDrGrpo: adv = group_size == 1 ? r : r - r.mean(1, true); break;
    case AdvantageEstimator::kRloo:
      TORCH_CHECK(group_size > 1, "RLOO needs groups of at least 2");
      adv = (r - r.mean(1, true)) * (double(group_size) / double(group_size - 1));
      break;
    case AdvantageEstimator::kReinforcePP: {
      auto flat = r.flatten();
      auto std = flat.numel() > 1 ? flat.std() : at::ones({}, flat.options());
      adv = ((r - flat.mean()) / (std + eps));
      break;
    }
  }
  return adv.flatten().to(rewards.scalar_type());
}

LossAggregation parse_loss_aggregation(const std::string& name) {
  if (name == "token-mean") return LossAggregation::kTokenMean;
  if (name == "seq-mean-token-mean") return LossAggregation::kSeqMeanTokenMean;
  if (name == "seq-mean-token-sum") return LossAggregation::kSeqMeanTokenSum;
  if (name == "seq-mean-token-sum-norm") return LossAggregation::kSeqMeanTokenSumNorm;
  throw InputError("loss aggregation '" + name +
                   "': expected one of token-mean, seq-mean-token-mean, seq-mean-token-sum, "
                   "seq-mean-token-sum-norm");
}

at::Tensor aggregate_loss(const at::Tensor& per_token, const at::Tensor& mask, LossAggregation mode,
                          double norm_length) {
  auto m = mask.to(per_token.scalar_type());
  auto masked = per_token * m;  // [B, T]
  switch (mode) {
    case LossAggregation::kTokenMean: return masked.sum() / m.sum().clamp_min(1);
    case LossAggregation::kSeqMeanTokenMean: return (masked.sum(1) / m.sum(1).clamp_min(1)).mean();
    case LossAggregation::kSeqMeanTokenSum: return masked.sum(1).mean();
    case LossAggregation::kSeqMeanTokenSumNorm:
      TORCH_CHECK(norm_length > 0, "seq-mean-token-sum-norm needs norm_length > 0");
      return masked.sum() / (double(per_token.size(0)) * norm_length);
  }
  TORCH_CHECK(false, "unknown aggregation");
}

PolicyLossResult policy_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& advantages,
                             const at::Tensor& mask, const PolicyLossOptions& o, const at::Tensor& rollout_logp,
                             const at::Tensor& keep) {
  auto A = advantages.to(logp.scalar_type()).unsqueeze(1);        // [B, 1]
  auto ratio = at::exp(at::clamp(logp - old_logp, -20.0, 20.0));  // [B, T]
  auto unclipped = -A * ratio;
  auto clipped = -A * at::clamp(ratio, 1.0 - o.clip_low, 1.0 + o.clip_high);
  auto loss1 = at::maximum(unclipped, clipped);  // PPO pessimistic bound
  auto per_token = loss1;
  at::Tensor dual_taken = at::zeros_like(loss1, at::kBool);
  if (o.dual_clip_c > 1.0) {
    auto cap = -A * o.dual_clip_c;  // positive when A < 0
    auto loss2 = at::minimum(loss1, cap);
    auto negative = (A < 0).expand_as(loss1);
    per_token = at::where(negative, loss2, loss1);
    dual_taken = negative & (loss1 > cap);
  }
  if (o.tis_cap > 0) {
    TORCH_CHECK(rollout_logp.defined(), "tis_cap > 0 needs the rollout log-probs");
    auto w = at::exp(at::clamp(old_logp - rollout_logp, -20.0, 20.0)).clamp_max(o.tis_cap).detach();
    per_token = per_token * w;
  }
  if (keep.defined()) per_token = per_token * keep.to(per_token.scalar_type());
  PolicyLossResult r;
  r.loss = aggregate_loss(per_token, mask, o.aggregation, o.norm_length);
  auto m = mask.to(at::kDouble);
  double n = std::max(1.0, m.sum().item<double>());
  r.clip_fraction = ((clipped > unclipped).to(at::kDouble) * m).sum().item<double>() / n;
  r.dual_clip_fraction = (dual_taken.to(at::kDouble) * m).sum().item<double>() / n;
  auto d = (logp - old_logp).detach().to(at::kDouble);
  r.approx_kl = (0.5 * d * d * m).sum().item<double>() / n;
  return r;
}

KlEstimator parse_kl_estimator(const std::string& name) {
  if (name == "k1") return KlEstimator::kK1;
  if (name == "k2") return KlEstimator::kK2;
  if (name == "k3" || name == "low_var_kl") return KlEstimator::kK3;
  throw InputError("KL estimator '" + name + "': expected one of k1, k2, k3");
}

at::Tensor kl_penalty(const at::Tensor& logp, const at::Tensor& ref_logp, KlEstimator estimator) {
  auto delta = at::clamp(logp - ref_logp, -20.0, 20.0);
  switch (estimator) {
    case KlEstimator::kK1: return delta;
    case KlEstimator::kK2: return 0.5 * delta * delta;
    case KlEstimator::kK3: return at::clamp(at::exp(-delta) + delta - 1.0, -10.0, 10.0);
  }
  TORCH_CHECK(false, "unknown KL estimator");
}

at::Tensor entropy_from_logits(const at::Tensor& logits) {
  auto p = at::softmax(logits, -1);
  return at::logsumexp(logits, -1) - (p * logits).sum(-1);
}

}  // namespace grpo
