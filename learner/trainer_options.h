// The GRPO trainer's options (learner/trainer.h) and the run config's `trainer:` section that sets
// them, parsed here and nowhere else. Plain values; pure functions.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "common/config.h"
#include "learner/grpo.h"
#include "learner/off_policy.h"
#include "learner/optim.h"
#include "model/model_options.h"
#include "rollout/sampler.h"

namespace grpo {

// Routing replay (MoE): which experts the trainer's forwards use. kOff: its routers choose;
// kRollout (R3): the rollout's routes (ScoredGroup completions' `routes`) in every forward of the
// step; kOldPolicy (R2): the routes of the trainer's own old-log-prob pass in the training passes.
enum class RoutingReplay { kOff, kRollout, kOldPolicy };

// "off" | "rollout" | "old_policy"; InputError listing them otherwise.
RoutingReplay parse_routing_replay(const std::string& name);

struct TrainerOptions {
  // optimizer (AdamW) and learning-rate schedule; schedule steps count trainer steps (updates)
  double lr = 1e-6;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // decay horizon (0: no decay)
  LrDecay lr_decay = LrDecay::kConstant;
  double min_lr_ratio = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;  // <= 0: no clipping

  // PPO loop
  int64_t ppo_epochs = 1;
  int64_t mini_batches = 1;      // optimizer steps per epoch
  int64_t micro_batch_size = 4;  // sequences per forward/backward
  // Each micro-batch's sequences run back to back in one row (attention within each, positions
  // restarting), so the forward/backward and the old/reference log-probs do no work on padding;
  // false: padded to the longest.
  bool pack_sequences = true;

  // GRPO loss
  AdvantageEstimator advantage = AdvantageEstimator::kGrpo;
  PolicyLossOptions policy;  // clip_low/clip_high/dual_clip_c/aggregation/norm_length/tis_cap
  double kl_coef = 0.0;      // 0: no reference model
  KlEstimator kl_estimator = KlEstimator::kK3;
  bool kl_in_reward = false;      // subtract kl_coef * sum_t KL_t from the reward instead of the loss
  int64_t ref_refresh_steps = 0;  // > 0: reference := policy every this many steps
  double entropy_coef = 0.0;      // loss -= entropy_coef * entropy
  // off-policy corrections (learner/off_policy.h): GSPO, MIS, IcePop, DeepSeek-V3.2's sequence
  // masking and unbiased KL
  OffPolicyOptions off_policy;
  // Log-probs (old, current, reference) of the distribution the rollout sampled from
  // (rollout::sampling_log_probs): softmax(logits / temperature) over the tokens top_k and top_p
  // keep. The train loop sets all three from rollout.sampling (greedy rollouts: 1, 1, 0).
  double temperature = 1.0;
  double top_p = 1.0;  // not a config key: rollout.sampling.top_p
  int64_t top_k = 0;   // not a config key: rollout.sampling.top_k
  rollout::SamplingParams sampling() const { return {temperature, top_p, top_k, 0}; }

  // MoE aux-loss-free balancing: bias += gamma * sign(mean load - load) per optimizer step
  double bias_update_gamma = 0.0;
  RoutingReplay routing_replay = RoutingReplay::kOff;
  // No update of the routers (`...mlp.gate.weight`) nor of their correction biases.
  bool freeze_router = false;

  // overlong filtering (DAPO): completions cut at the length limit get no loss (their reward
  // still counts in their group's advantages)
  bool overlong_filter = false;

  // ZeRO-1 (expert parallel only): shard the AdamW moments of the replicated parameters over the
  // ranks (learner/zero1.h): the same update, the replicated part of the state 1/world a rank.
  bool zero1 = false;

  // numerics and determinism
  std::string dtype = "fp32";  // compute: "fp32", "bf16" (fp32 master weights) or "fp64" ("auto" resolved on reading)
  int64_t threads = 0;         // intra-op threads for the update (0: leave LibTorch's setting)
  uint64_t seed = 1;           // mini-batch shuffling

  // How the policy must be built for these options (param and compute dtype).
  ModelOptions model_options() const;
};

// The `trainer:` section of the run config. Unknown keys, wrong types and bad enum values are
// InputErrors naming the file and the key (e.g. "run.yaml: key 'trainer.loss_agg': ...").
// Keys: lr, warmup_steps, total_steps, lr_decay, min_lr_ratio, adam_beta1, adam_beta2, adam_eps,
// weight_decay, max_grad_norm, ppo_epochs, mini_batches, micro_batch_size, advantage, clip_low,
// clip_high, dual_clip, loss_agg, norm_length, tis_cap, kl_coef, kl_estimator, kl_in_reward,
// ref_refresh_steps, entropy_coef, temperature, bias_update_gamma, routing_replay, freeze_router,
// overlong_filter, zero1, dtype, threads, seed; the off-policy corrections: policy_loss (ppo | gspo),
// gspo_clip_low, gspo_clip_high, mis (off | token | sequence | geometric), mis_low, mis_high,
// icepop_beta, offpolicy_mask_delta (off | δ >= 0), kl_unbiased.
TrainerOptions trainer_options_from_config(const Config& section);

// The checks trainer_options_from_config and the Trainer make; `key` names an option in the error
// ("run.yaml: key 'trainer.lr'" or "trainer option 'lr'"). Throws InputError.
void validate_trainer_options(const TrainerOptions& o, const std::function<std::string(const std::string&)>& key);

}  // namespace grpo
