// Weight publishing from expert-parallel ranks (`grpo learner`, the run config's `publish:`
// section): rank r of R sends the tensors it holds — its routed experts
// (model.layers.L.mlp.experts.E.* for its E) and, on rank 0 only, the replicated tensors
// (rank_shard, learner/expert_parallel.h) — as part r of R of the version (UpdateBegin in
// proto/rollout.proto) to every rollout worker, all ranks at once. No rank ever holds another
// rank's experts: each worker assembles the version from the R parts and applies it atomically,
// and every rank's call returns once the worker applied it (or dropped it: then every rank's call
// fails alike, and each rank drops that worker, train/rollout_pool.h).
//
// The `publish:` section (every key optional unless marked):
//   rollout: [ADDR, ...]   RolloutService addresses (`grpo rollout-server`)                (required)
//   every: 0               publish after every N steps (0: only after the last step); always
//                          after the last. The version is the number of steps done, so the
//                          workers must start on an older one (rollout-server's --version 0)
//   fp8: false             send FP8 codes + scales (workers with an FP8 engine)
//   timeout_ms: 900000     bound of one call; keep it above the workers' server.update_timeout_ms
//                          (a part waits for the other ranks' parts)
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "learner/distributed.h"
#include "learner/pretrain.h"
#include "model/deepseek.h"
#include "train/rollout_pool.h"

namespace grpo {

struct EpPublishOptions {
  std::vector<std::string> rollout;
  int64_t every = 0;
  bool fp8 = false;
  int64_t timeout_ms = 900'000;

  // From the `publish:` section; InputError naming the file and key.
  static EpPublishOptions from_config(const Config& section);
  // Whether to publish after `steps_done` of `steps`.
  bool due(int64_t steps_done, int64_t steps) const;
};

// One publish, every rank's figures (gathered on every rank).
struct EpPublishStats {
  int64_t version = 0, workers = 0;
  std::vector<int64_t> tensors, bytes;  // [R] per rank: tensors sent to each worker, bytes to all
  std::vector<double> seconds;          // [R] per rank: until every worker applied the version

  // time/sync (the slowest rank), sync/bytes (all ranks), sync/gb_per_s, sync/workers and, per
  // rank r, sync/rank<r>/{tensors, bytes, seconds}.
  std::map<std::string, double> metrics() const;
};

class EpPublisher {
 public:
  EpPublisher(const EpPublishOptions& options, Distributed& dist);

  // Collective (every rank, the same version): sends this rank's shard of `model` as its part.
  // Throws when no worker is left (RolloutPool::publish); DistributedError when a rank failed.
  EpPublishStats publish(int64_t version, const CausalLM& model);

 private:
  EpPublishOptions options_;
  Distributed& dist_;
  RolloutPool pool_;
};

// The pretrain hook of `grpo learner`: publishes when options.due(steps_done, steps) and returns
// the publish's metrics.
PretrainStepHook ep_publish_hook(const EpPublishOptions& options, Distributed& dist, int64_t steps);

}  // namespace grpo
