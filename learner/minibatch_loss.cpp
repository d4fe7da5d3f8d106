#include "learner/minibatch_loss.h"

#include <algorithm>

namespace grpo {
namespace {

// What a (micro-)batch's loss is normalised by: its completion tokens (token-mean) or its rows.
double normaliser(const TrainBatch& b, LossAggregation mode) {
  return mode == LossAggregation::kTokenMean ? b.tokens() : double(b.rows());
}

}  // namespace

void add_expert_loads(std::vector<at::Tensor>& sum, const std::vector<at::Tensor>& add) {
  if (sum.empty()) {
    sum = add;
    return;
  }
  for (size_t i = 0; i < sum.size() && i < add.size(); ++i)
    if (add[i].defined()) sum[i] = sum[i].defined() ? sum[i] + add[i] : add[i];
}

MiniBatchStats accumulate_minibatch(const DeepseekModel& policy, const TrainBatch& mb, const LossSpec& spec,
                                    int64_t micro_batch_size) {
  const LossAggregation mode = spec.policy.aggregation;
  const double whole = normaliser(mb, mode);
  const int64_t n = mb.rows(), step = std::max<int64_t>(1, micro_batch_size);
  MiniBatchStats s;
  s.tokens = mb.tokens();
  // Micro-batches of similar lengths pad less (the sum over micro-batches is the same in any order).
  const at::Tensor by_length = std::get<1>(mb.lengths.sort(c10::optional<bool>(true), 0));  // [b]
  for (int64_t begin = 0; begin < n; begin += step) {
    const TrainBatch micro = mb.select(by_length.narrow(0, begin, std::min(n, begin + step) - begin));
    const double micro_tokens = micro.tokens();
    const double weight = whole > 0 ? normaliser(micro, mode) / whole : 0.0;
    CompletionForward f = completion_forward(policy, micro.ids, micro.mask, spec.entropy_coef != 0, spec.temperature);

    PolicyLossResult pl = policy_loss(f.logp, micro.old_logp, micro.advantages, micro.mask, spec.policy,
                                      micro.rollout_logp);
    at::Tensor loss = pl.loss;
    at::Tensor entropy = aggregate_loss(f.entropy, micro.mask, mode, spec.policy.norm_length);
    if (spec.entropy_coef != 0) loss = loss - spec.entropy_coef * entropy;
    if (spec.kl_coef != 0) {
      at::Tensor kl = kl_penalty(f.logp, micro.ref_logp, spec.kl_estimator);  // [b, T-1]
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
