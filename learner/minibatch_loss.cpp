#include "learner/minibatch_loss.h"

#include <algorithm>

namespace grpo {
double loss_normaliser(const TrainBatch& b, LossAggregation mode) {
  return mode == LossAggregation::kTokenMean ? b.tokens() : double(b.rows());
}

void add_expert_loads(std::vector<at::Tensor>& sum, const std::vector<at::Tensor>& add) {
  if (sum.empty()) {
    sum = add;
    return;
  }
  for (size_t i = 0; i < sum.size() && i < add.size(); ++i)
    if (add[i].defined()) sum[i] = sum[i].defined() ? sum[i] + add[i] : add[i];
}

MiniBatchStats accumulate_minibatch(const CausalLM& policy, const TrainBatch& mb, const LossSpec& spec,
                                    int64_t micro_batch_size, bool pack, const RankPart* part) {
  const LossAggregation mode = spec.policy.aggregation;
  const double whole = part ? part->whole : loss_normaliser(mb, mode);
  const int64_t n = mb.rows(), step = std::max<int64_t>(1, micro_batch_size);
  const int64_t passes = std::max(forward_passes(n, step), part ? part->passes : 0);
  MiniBatchStats s;
  s.tokens = mb.tokens();
  // Micro-batches of similar lengths pad less (the sum over micro-batches is the same in any order).
  const at::Tensor by_length = std::get<1>(mb.lengths.sort(c10::optional<bool>(true), 0));  // [b]
  for (int64_t i = 0, begin = 0; i < passes; ++i, begin += step) {
    if (begin >= n) {  // this rank's rows are done: a pass without rows, for the other ranks' collectives
      const TrainBatch none = mb.select(at::empty({0}, at::kLong)).to(policy.options().device);
      CompletionForward out = completion_forward(policy, none, spec.entropy_coef != 0, spec.sampling);
      (out.logp.sum() * 0.0).backward();                 // its experts' gradients from the other ranks' rows
      add_expert_loads(s.expert_load, out.expert_load);  // zeros: the layers' loads exist on every rank
      continue;
    }
    const TrainBatch micro =  // on the policy's device, where its loss is computed
        mb.select(by_length.narrow(0, begin, std::min(n, begin + step) - begin)).to(policy.options().device);
    const double micro_tokens = micro.tokens();
    const double weight = whole > 0 ? loss_normaliser(micro, mode) / whole : 0.0;
    CompletionForward f = completion_forward(policy, micro, spec.entropy_coef != 0, spec.sampling, pack);

    const OffPolicyOptions& op = spec.off_policy;
    const at::Tensor keep = off_policy_keep(op, micro.old_logp, micro.rollout_logp, micro.advantages, micro.mask);
    PolicyLossResult pl =
        op.policy_loss == PolicyLossKind::kGspo
            ? gspo_loss(f.logp, micro.old_logp, micro.advantages, micro.mask, op.gspo_clip_low, op.gspo_clip_high, keep)
            : policy_loss(f.logp, micro.old_logp, micro.advantages, micro.mask, spec.policy, micro.rollout_logp, keep);
    at::Tensor loss = pl.loss;
    at::Tensor entropy = aggregate_loss(f.entropy, micro.mask, mode, spec.policy.norm_length);
    if (spec.entropy_coef != 0) loss = loss - spec.entropy_coef * entropy;
    if (spec.kl_coef != 0) {
      at::Tensor kl = op.kl_unbiased ? unbiased_kl(f.logp, micro.old_logp, micro.ref_logp)
                                     : kl_penalty(f.logp, micro.ref_logp, spec.kl_estimator);  // [b, T-1]
      loss = loss + spec.kl_coef * aggregate_loss(kl, micro.mask, mode, spec.policy.norm_length);
      s.kl += (kl.detach() * micro.mask).sum().item<double>();
    }
    (loss * weight).backward();

    s.loss += weight * loss.item<double>();
    s.policy_loss += weight * pl.loss.item<double>();
    s.entropy += (f.entropy.detach() * micro.mask).sum().item<double>();
    s.clip_fraction += pl.clip_fraction * micro_tokens;
    s.dual_clip_fraction += pl.dual_clip_fraction * micro_tokens;
    s.approx_kl += pl.approx_kl * micro_tokens;
    add_expert_loads(s.expert_load, f.expert_load);
  }
  const double tokens = std::max(1.0, s.tokens);
  for (double* m : {&s.kl, &s.entropy, &s.clip_fraction, &s.dual_clip_fraction, &s.approx_kl}) *m /= tokens;
  return s;
}

}  // namespace grpo
