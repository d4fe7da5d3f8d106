// One mini-batch's GRPO loss and its gradient, accumulated over micro-batches.
//
// loss = policy_loss + kl_coef · agg(KL(logp, ref_logp)) − entropy_coef · agg(entropy), every term
// aggregated over the whole mini-batch with the policy loss's aggregation mode. The policy term is
// PPO's (grpo.h policy_loss) or GSPO's (off_policy.h gspo_loss), its tokens multiplied by the
// off-policy keep-masks that are on (off_policy.h off_policy_keep); the KL term is kl_penalty's or,
// with kl_unbiased, off_policy.h unbiased_kl. Micro-batch i's
// loss is weighted by its share of the mini-batch's normaliser — its completion-token count over
// the mini-batch's for token-mean, its row count over the mini-batch's for the seq-mean modes — so
// the summed gradient equals the gradient of the mini-batch loss computed in one piece.
#pragma once
#include <cstdint>
#include <vector>

#include "learner/grpo.h"
#include "learner/off_policy.h"
#include "learner/train_batch.h"
#include "model/causal_lm.h"

namespace grpo {

struct LossSpec {
  PolicyLossOptions policy;
  OffPolicyOptions off_policy;  // GSPO instead of PPO, the keep-masks on the policy term, the unbiased KL
  double kl_coef = 0;           // KL term in the loss (0: none; needs batch.ref_logp otherwise)
  KlEstimator kl_estimator = KlEstimator::kK3;
  double entropy_coef = 0;
  rollout::SamplingParams sampling;  // the rollout's temperature, top-p, top-k (completion_forward)
};

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct MiniBatchStats {
  double loss = 0, policy_loss = 0;                                 // the mini-batch's loss terms
  double kl = 0, entropy = 0;                                       // means over its completion tokens
  double clip_fraction = 0, dual_clip_fraction = 0, approx_kl = 0;  // means over its completion tokens
  double tokens = 0;
  std::vector<at::Tensor> expert_load;  // per decoder layer [E], summed over the micro-batches
};

// Forwards and back-propagates `mb` (old_logp and advantages set; ref_logp when kl_coef > 0)
// through `policy`, `micro_batch_size` rows at a time (rows sorted by length), adding the
// mini-batch loss's gradient to the .grad() of the policy's trainable parameters. `pack`: each
// micro-batch's rows run as one packed row (completion_forward), without padding; otherwise padded
// to its longest row.
//
// Expert parallelism: `mb` is this rank's share of the mini-batch and `part` says how it fits the
// whole (train_batch.h): the micro-batches are weighted by part->whole, so the gradients summed
// over ranks are those of the whole mini-batch, and loss/policy_loss are this rank's terms of it
// (sum them over ranks); the token means are over this rank's tokens.
MiniBatchStats accumulate_minibatch(const CausalLM& policy, const TrainBatch& mb, const LossSpec& spec,
                                    int64_t micro_batch_size, bool pack, const RankPart* part = nullptr);

// What a (micro-)batch's loss is normalised by: its completion tokens (token-mean) or its rows.
double loss_normaliser(const TrainBatch& b, LossAggregation mode);

// sum[i] += add[i] for every layer with a load (an empty `sum` becomes `add`).
void add_expert_loads(std::vector<at::Tensor>& sum, const std::vector<at::Tensor>& add);

}  // namespace grpo
