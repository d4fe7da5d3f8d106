// The R1-Zero loop (docs/architecture.md §1): `grpo train CONFIG`.
//
// Per step n: pick the step's prompts (train/prompt_schedule.h) → ask the rollout workers for
// G samples each, on weights of version >= n - max_staleness → score every completion through
// the RewardService → write every scored group to the experience store (before it is used) →
// dynamic sampling / overlong filtering → one trainer update → publish weights version n + 1 to
// every rollout worker → metrics, held-out evaluation, checkpoint.
//
// Generation runs on its own thread one step ahead at most max_staleness steps (0 = synchronous).
//
// Services: with no addresses configured, the controller starts the reward server and
// `rollout.workers` rollout servers in this process on 127.0.0.1 (free ports) and talks to them
// over gRPC exactly as it talks to remote ones.
//
// Run directory (run.out_dir): config.yaml (the resolved config), store/ (RocksDB experience
// store), checkpoints/step-NNNNNN/ (HF checkpoint + optimizer + trainer state), metrics.jsonl,
// tb/ (TensorBoard), report.html.
//
// Resume: started again with the same config (after a crash, kill -9 at any point, or with a
// larger train.steps), the controller loads the newest checkpoint that loads, then replays the
// steps after it: a step whose groups are already in the store trains on those (no group is
// generated twice or lost), the others are generated, so the run ends where an uninterrupted one
// would. Weights are only ever changed by loading a checkpoint or by one update per step, so no
// update is applied twice. The store marks steps trained only once a checkpoint holds them.
// metrics.jsonl loses its lines after the checkpoint's step, which the replay logs again.
// Checkpoints of which none loads (another model, another number of expert-parallel ranks) stop
// the run with an InputError naming the newest one's cause, instead of starting over.
//
// Weight versions carry the run epoch (train/weight_version.h): every start publishes its
// weights to the workers first, so workers left running by an earlier start, even ahead of it,
// serve this start's weights. A worker that failed is sent the weights again at each publish and
// rejoins once it takes them (a restarted `grpo rollout-server`).
#pragma once
#include <cstdint>
#include <string>

#include <chrono>

#include "common/config.h"
#include "common/stop_signals.h"
#include "learner/distributed.h"

namespace grpo {

struct TrainSummary {
  int64_t start_step = 0;                                    // steps already done when this run started (resume)
  int64_t steps_done = 0;                                    // after the run
  int64_t steps_trained_no_group = 0;                        // steps of this run that had no group to train on
  int stopped_by = 0;                                        // the signal that stopped the run early (0: none)
  double first_eval_accuracy = -1, last_eval_accuracy = -1;  // held-out; -1 when not evaluated
  std::string out_dir;
};

// Expert parallel (`grpo learner --nproc N` on a run config like this one, learner/expert_parallel.h):
// every rank calls run_training with its `dist`. Rank 0 runs everything above — services, store,
// metrics, evaluation, report — and broadcasts each step's groups to the other ranks, which wait
// for its "step ready" message in the rendezvous store up to `wait` (rank 0 may be generating)
// rather than in a collective bounded by the collective timeout. Every rank holds its
// expert shard of the policy and takes part in the trainer step (learner/trainer.h), in publishing
// (each rank streams its own experts to the rollout workers as its part of the version,
// train/ep_publisher.h; rank 0 also the replicated tensors) and in every checkpoint (sharded, with
// each rank's optimizer state). Resume needs the same number of ranks; the ranks agree on the
// newest checkpoint that every one of them can load.
struct LearnerRanks {
  Distributed* dist = nullptr;
  std::chrono::milliseconds wait{std::chrono::hours(1)};
};

// Runs the loop described above to train.steps. `progress`: the progress line on stderr (rank 0);
// a step that trains no group (dynamic sampling found no group whose rewards differ) is warned
// about there and counted in the summary. `stop` (one process only, null: none): once it has
// received a signal, the run stops after the current step, saves a checkpoint at it and returns
// with stopped_by set; the same config resumes from there.
// The summary is rank 0's (other ranks return theirs with the steps only).
TrainSummary run_training(const Config& config, bool progress = true, const LearnerRanks& ranks = {},
                          const StopSignals* stop = nullptr);

}  // namespace grpo
