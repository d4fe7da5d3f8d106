// The GRPO learner update (docs/architecture.md §4): scored groups in, one policy update out.
//
// One step():
//   1. batch: prompt + completion ids per sequence, right-padded into [B, T]; the loss mask covers
//      the completion tokens only; advantages from the group rewards (grpo.h group_advantages);
//   2. old log-probs: recomputed under the current weights (no grad); the rollout engine's own
//      log-probs are kept for the off-policy corrections (TIS, MIS, IcePop, off-policy sequence
//      masking: learner/off_policy.h) and the mismatch metrics;
//   3. `ppo_epochs` passes; each shuffles the sequences (seeded by seed, step and epoch) and splits
//      them into `mini_batches` optimizer steps; each mini-batch's gradient is accumulated over
//      micro-batches of `micro_batch_size` sequences, equal to the gradient of the whole
//      mini-batch's loss (learner/minibatch_loss.h);
//   4. per optimizer step: grad-norm clip, AdamW with the step's learning rate (learner/optim.h),
//      and the aux-loss-free expert-bias update from the expert loads counted in that optimizer
//      step's forward passes (`bias_update_gamma`; 0 disables).
// Loss = policy_loss (PPO clip / dual clip / TIS / aggregation, or GSPO; off-policy keep-masks)
//        + kl_coef · KL(policy ‖ reference)
//        − entropy_coef · entropy, every term aggregated like the policy loss. The reference is a
// frozen copy of the initial policy (refreshed to the current one every `ref_refresh_steps` steps
// when > 0); kl_coef = 0 builds none. With kl_in_reward the per-sequence sum of the KL estimate
// (old log-probs vs reference, times kl_coef) is subtracted from the reward before the
// advantages instead.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "learner/distributed.h"
#include "learner/scored_group.h"
#include "learner/trainer_options.h"
#include "model/causal_lm.h"

namespace grpo {

// What one step() measured. Token metrics are means over all completion tokens the step's
// forward passes saw (every epoch); loss terms are means over its optimizer steps.
struct TrainStats {
  double loss = 0;  // total loss (policy + kl - entropy bonus)
  double policy_loss = 0;
  double kl = 0;       // mean per-token KL estimate to the reference (0 without one):
                       // of the training forwards, or with kl_in_reward of the old log-probs
  double entropy = 0;  // mean per-token entropy of the policy
  double clip_fraction = 0;
  double dual_clip_fraction = 0;
  double approx_kl = 0;       // mean 0.5 (logp - old_logp)^2
  double grad_norm_mean = 0;  // pre-clip global grad norm, over optimizer steps
  double grad_norm_max = 0;
  double skipped_steps = 0;  // optimizer steps skipped for a non-finite gradient norm
  double lr = 0;
  double reward_mean = 0;  // of the rewards the advantages were computed from (KL-shaped with kl_in_reward)
  double advantage_abs_mean = 0;
  double tokens = 0;  // completion tokens in the batch
  double sequences = 0;
  double optimizer_steps = 0;
  double seconds = 0;  // wall time of step()
  // Expert-load imbalance: max over MoE layers of max(load) / mean(load), loads summed over the
  // step's training forwards (1 = perfectly balanced; 0 for a dense model).
  double expert_load_imbalance = 0;

  // "loss", "policy_loss", ... -> value, for logging as "train/<name>".
  std::map<std::string, double> as_map() const;
  // Rollout–trainer mismatch over the batch's completion tokens, the old log-probs being the
  // trainer's recomputation at the start of the step (off_policy.h measure_mismatch):
  // "logp_abs_mean", "logp_abs_max", "kl_k3", the shares the corrections mask -> value, for
  // logging as "mismatch/<name>".
  std::map<std::string, double> mismatch;
};

// Expert parallelism (`dist`, learner/expert_parallel.h): every rank constructs its Trainer with
// its shard of the policy (ModelOptions expert_rank = rank, expert_ranks = world size) and calls
// every method with the same arguments at the same time (they are collectives). step() splits each
// batch by rows over the ranks: old and reference log-probs are computed on a rank's rows and
// all-gathered; each mini-batch's rows are split again, the replicated parameters' gradients
// summed over ranks, and every rank updates its experts and the replicated parameters alike. A rank
// whose rows run out makes its remaining passes without rows (train_batch.h RankPart). The result
// equals one process's on the same groups (up to float summation order), and TrainStats are
// global on every rank.
class Trainer {
 public:
  // `policy` must be built with options.model_options() (checked: InputError). The reference
  // model (kl_coef > 0) is a copy of the policy as it is now. With `dist` (kept by reference), the
  // policy must be this rank's expert shard; the trainer routes its experts over `dist`.
  Trainer(std::shared_ptr<CausalLM> policy, TrainerOptions options, Distributed* dist = nullptr);
  ~Trainer();

  // One learner update from `groups`: all of the same G >= 1, each completion with token_ids,
  // the rollout's logprobs (same length) and a reward. Bad input: InputError naming the group
  // and completion, nothing changed.
  TrainStats step(const std::vector<ScoredGroup>& groups);

  // A step with nothing to learn from (e.g. dynamic sampling found no group whose rewards
  // differ): counts as a step (LR schedule, reference refresh) without changing the weights.
  void skip_step();

  int64_t steps_done() const { return steps_done_; }
  std::shared_ptr<CausalLM> policy() const { return policy_; }
  const TrainerOptions& options() const { return options_; }

  // DIR: an HF checkpoint of the policy (config.json + model.safetensors in the parameter dtype,
  // loadable by load_pretrained and `grpo generate`) plus DIR/trainer/ with state.json (steps,
  // seed, option fingerprint), optimizer.safetensors (AdamW moments) and, when the reference
  // differs from the initial policy, reference.safetensors. Written to DIR.tmp and swapped into
  // place; on failure (e.g. a full disk) any previous DIR is intact and this throws.
  // Expert-parallel: every rank writes its own tensors (learner/sharded_checkpoint.h: an HF sharded
  // checkpoint, loadable at any size) and its optimizer state and reference experts to
  // DIR/rank-<r>-state.safetensors; state.json records the world size.
  // `files` (name in DIR -> contents: the run's tokenizer files, tokenizer/checkpoint_files.h) go
  // into the same swap, so the checkpoint loads on its own.
  void save_checkpoint(const std::string& dir, const std::map<std::string, std::string>& files = {}) const;
  // Restores what save_checkpoint wrote. The Trainer must have been constructed with the run's
  // initial policy when the checkpoint holds no reference.safetensors (checked by a checksum).
  // Mismatches are InputErrors naming the file and entry; on error nothing changes (on this rank:
  // expert-parallel ranks must agree on whether it loaded, e.g. by an all-reduce of the outcome).
  // An expert-parallel checkpoint loads only at the world size it was saved at.
  void load_checkpoint(const std::string& dir);

 private:
  struct State;
  void end_step();  // steps_done_ + 1 and the reference refresh
  // A frozen model like the policy (this rank's shard, its experts routed over dist_) holding `weights`.
  std::shared_ptr<CausalLM> make_reference(const std::map<std::string, at::Tensor>& weights,
                                           const std::string& source) const;
  std::shared_ptr<CausalLM> policy_;
  TrainerOptions options_;
  Distributed* dist_ = nullptr;  // expert-parallel group (null: one process)
  int64_t steps_done_ = 0;
  std::unique_ptr<State> state_;  // optimizer, reference model, initial checksum
};

}  // namespace grpo
