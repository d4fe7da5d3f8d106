#include "learner/off_policy.h"

#include <cmath>

#include "common/error.h"

namespace grpo {
namespace {

// log ρ_t = old_logp − rollout_logp in float64, 0 where mask is 0 ([B, T]).
at::Tensor log_rho(const at::Tensor& old_logp, const at::Tensor& rollout_logp, const at::Tensor& counted) {
  const at::Tensor d = old_logp.detach().to(at::kDouble) - rollout_logp.detach().to(at::kDouble);
  return at::where(counted, d, at::zeros_like(d));
}

// Per-sequence mean over the counted tokens of x (0 where mask is 0): [B, T] -> [B, 1].
at::Tensor sequence_mean(const at::Tensor& x, const at::Tensor& counted) {
  return x.sum(1, true) / counted.sum(1, true).to(x.scalar_type()).clamp_min(1);
}

// keep & mask as 0/1 in mask's dtype.
at::Tensor as_mask(const at::Tensor& keep, const at::Tensor& counted, const at::Tensor& mask) {
  return (keep.expand_as(counted) & counted).to(mask.scalar_type());
}

}  // namespace

PolicyLossKind parse_policy_loss_kind(const std::string& name) {
  if (name == "ppo") return PolicyLossKind::kPpo;
  if (name == "gspo") return PolicyLossKind::kGspo;
  throw InputError("policy loss '" + name + "': expected one of ppo, gspo");
}

MisLevel parse_mis_level(const std::string& name) {
  if (name == "off") return MisLevel::kOff;
  if (name == "token") return MisLevel::kToken;
  if (name == "sequence") return MisLevel::kSequence;
  if (name == "geometric") return MisLevel::kGeometric;
  throw InputError("masked importance sampling level '" + name + "': expected one of off, token, sequence, geometric");
}

at::Tensor gspo_sequence_ratio(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& mask) {
  const at::Tensor m = mask.to(logp.scalar_type());
  return at::exp(at::clamp(sequence_mean((logp - old_logp) * m, mask > 0), -20.0, 20.0)).squeeze(1);  // [B]
}

PolicyLossResult gspo_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& advantages,
                           const at::Tensor& mask, double clip_low, double clip_high, const at::Tensor& keep) {
  const at::Tensor A = advantages.to(logp.scalar_type()).unsqueeze(1);                   // [B, 1]
  const at::Tensor s = gspo_sequence_ratio(logp, old_logp, mask).detach().unsqueeze(1);  // sg[s_i] [B, 1]
  const at::Tensor s_token = s * at::exp(logp - logp.detach());                          // [B, T], value s_i
  const at::Tensor unclipped = -A * s_token;
  const at::Tensor clipped = -A * at::clamp(s_token, 1.0 - clip_low, 1.0 + clip_high);
  at::Tensor per_token = at::maximum(unclipped, clipped);
  if (keep.defined()) per_token = per_token * keep.to(per_token.scalar_type());
  PolicyLossResult r;
  r.loss = aggregate_loss(per_token, mask, LossAggregation::kSeqMeanTokenMean);
  const at::Tensor m = mask.to(at::kDouble);
  const double n = std::max(1.0, m.sum().item<double>());
  r.clip_fraction = ((clipped > unclipped).to(at::kDouble) * m).sum().item<double>() / n;
  const at::Tensor d = (logp - old_logp).detach().to(at::kDouble);
  r.approx_kl = (0.5 * d * d * m).sum().item<double>() / n;
  return r;
}

at::Tensor mis_keep(const at::Tensor& old_logp, const at::Tensor& rollout_logp, const at::Tensor& mask, MisLevel level,
                    double low, double high) {
  TORCH_CHECK(low > 0 && low <= high, "mis_keep needs 0 < low <= high");
  const at::Tensor counted = mask > 0;
  const at::Tensor lr = log_rho(old_logp, rollout_logp, counted);  // [B, T]
  at::Tensor stat;
  switch (level) {
    case MisLevel::kOff: return mask.clone();
    case MisLevel::kToken: stat = lr; break;
    case MisLevel::kSequence: stat = lr.sum(1, true); break;              // log ρ_seq [B, 1]
    case MisLevel::kGeometric: stat = sequence_mean(lr, counted); break;  // [B, 1]
  }
  return as_mask((stat >= std::log(low)) & (stat <= std::log(high)), counted, mask);
}

at::Tensor icepop_keep(const at::Tensor& old_logp, const at::Tensor& rollout_logp, const at::Tensor& mask,
                       double beta) {
  TORCH_CHECK(beta > 1, "icepop_keep needs beta > 1");
  const at::Tensor counted = mask > 0;
  const at::Tensor lr = log_rho(old_logp, rollout_logp, counted);
  return as_mask((lr >= -std::log(beta)) & (lr <= std::log(beta)), counted, mask);
}

at::Tensor offpolicy_sequence_keep(const at::Tensor& old_logp, const at::Tensor& rollout_logp,
                                   const at::Tensor& advantages, const at::Tensor& mask, double delta) {
  TORCH_CHECK(delta >= 0, "offpolicy_sequence_keep needs delta >= 0");
  const at::Tensor counted = mask > 0;
  const at::Tensor kl = sequence_mean(-log_rho(old_logp, rollout_logp, counted), counted);  // [B, 1]
  const at::Tensor drop = (advantages.detach().to(at::kDouble).unsqueeze(1) < 0) & (kl > delta);
  return as_mask(~drop, counted, mask);
}

at::Tensor off_policy_keep(const OffPolicyOptions& o, const at::Tensor& old_logp, const at::Tensor& rollout_logp,
                           const at::Tensor& advantages, const at::Tensor& mask) {
  at::Tensor keep = mis_keep(old_logp, rollout_logp, mask, o.mis, o.mis_low, o.mis_high);
  if (o.icepop_beta > 0) keep = keep * icepop_keep(old_logp, rollout_logp, mask, o.icepop_beta);
  if (o.offpolicy_mask_on())
    keep = keep * offpolicy_sequence_keep(old_logp, rollout_logp, advantages, mask, o.offpolicy_mask_delta);
  return keep;
}

at::Tensor unbiased_kl(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& ref_logp) {
  const at::Tensor ratio = at::exp(at::clamp(logp - old_logp, -20.0, 20.0));  // π_θ/π_old
  const at::Tensor d = at::clamp(ref_logp - logp, -20.0, 20.0);               // log(π_ref/π_θ)
  return ratio * (at::exp(d) - d - 1.0);
}

std::map<std::string, double> measure_mismatch(const at::Tensor& old_logp, const at::Tensor& rollout_logp,
                                               const at::Tensor& advantages, const at::Tensor& mask,
                                               const OffPolicyOptions& o, double tis_cap) {
  const at::Tensor counted = mask > 0;
  const double n = counted.sum().item<double>();
  const at::Tensor d = log_rho(old_logp, rollout_logp, counted);  // Δ, 0 off the mask
  const auto share = [&](const at::Tensor& selected) {
    return n > 0 ? (selected & counted).sum().item<double>() / n : 0.0;
  };
  const auto masked = [&](const at::Tensor& keep) { return share(keep == 0); };
  const at::Tensor dc = at::clamp(d, -20.0, 20.0);
  std::map<std::string, double> out;
  out["logp_abs_mean"] = n > 0 ? d.abs().sum().item<double>() / n : 0.0;
  out["logp_abs_max"] = n > 0 ? d.abs().max().item<double>() : 0.0;
  out["kl_k3"] = n > 0 ? (at::exp(dc) - 1.0 - dc).sum().item<double>() / n : 0.0;
  if (tis_cap > 0) out["tis_truncated"] = share(d > std::log(tis_cap));
  if (o.mis != MisLevel::kOff)
    out["mis_masked"] = masked(mis_keep(old_logp, rollout_logp, mask, o.mis, o.mis_low, o.mis_high));
  if (o.icepop_beta > 0) out["icepop_masked"] = masked(icepop_keep(old_logp, rollout_logp, mask, o.icepop_beta));
  if (o.offpolicy_mask_on())
    out["offpolicy_masked"] =
        masked(offpolicy_sequence_keep(old_logp, rollout_logp, advantages, mask, o.offpolicy_mask_delta));
  return out;
}

std::map<std::string, double> expert_disagreement(const at::Tensor& chosen, const at::Tensor& rollout,
                                                  const at::Tensor& mask) {
  const at::Tensor on = mask > 0;                                             // [B, T]
  const at::Tensor differs = (chosen != rollout).any(-1) & on.unsqueeze(-1);  // [B, T, L]
  const double tokens = std::max<double>(1, on.sum().item<double>());
  const int64_t layers = chosen.size(2);
  std::map<std::string, double> out;
  out["expert_disagreement"] =
      differs.sum().item<double>() / (tokens * static_cast<double>(std::max<int64_t>(1, layers)));
  const at::Tensor per_layer = differs.sum(at::IntArrayRef{0, 1}).to(at::kDouble);  // [L]
  for (int64_t l = 0; l < layers; ++l)
    out["expert_disagreement/moe_layer" + std::to_string(l)] = per_layer[l].item<double>() / tokens;
  return out;
}

}  // namespace grpo
