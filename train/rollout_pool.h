// The learner's view of its rollout workers: a set of RolloutService addresses (in-process
// servers on loopback or remote `grpo rollout-server`s). generate() spreads a step's prompts over
// the live workers and reassigns the prompts of a worker that fails mid-call to the others;
// publish() sends new weights to every live worker in parallel.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rollout/service/client.h"

namespace grpo {

struct PublishStats {
  int64_t version = 0;
  int64_t workers = 0;
  int64_t tensors = 0;  // sent to each worker (FP8 scales count)
  int64_t bytes = 0;    // sent to all workers together
  double seconds = 0;   // wall time of the whole publish
};

// Thread-safe: generate() and publish() may run at once (the producer thread generates while the
// learner publishes); the workers' states are under a mutex. Owns its clients.
class RolloutPool {
 public:
  // `reassign_rounds`: how many times the unfinished prompts of failed workers are sent again.
  RolloutPool(const std::vector<std::string>& addresses, int64_t timeout_ms, int reassign_rounds);

  // G completions per prompt, in sample order, each from weights >= min_version. Each prompt
  // carries its own seed, so a reassigned prompt samples the same tokens. A worker whose call
  // fails (unreachable, broken stream, deadline) is dropped and its prompts go to the others; a
  // refused request (INVALID_ARGUMENT, FAILED_PRECONDITION, ...) is rethrown as RpcError. Throws
  // InputError naming the workers and their errors when no worker is left or the rounds are spent.
  // With record_routes, each completion carries the routes its worker recorded (GenerateCall).
  std::vector<std::vector<rollout::Completion>> generate(const std::vector<rollout::GeneratePrompt>& prompts,
                                                         const rollout::GenerationParams& params, int64_t min_version,
                                                         bool record_routes = false);

  // Sends `state` as `version` to every live worker (FP8-quantised by the sender when `fp8`);
  // with `part`, as that part of a version other callers send the other parts of (every part's
  // call returns once the worker applied the whole version). A worker that fails is dropped (and
  // logged); throws when none is left. A dropped worker that answers a Status call again (within
  // kProbeTimeoutMs; e.g. a restarted `grpo rollout-server`) is sent the version too and rejoins
  // the pool when it takes it.
  PublishStats publish(int64_t version, const std::map<std::string, at::Tensor>& state, bool fp8,
                       rollout::UpdatePart part = {});

  size_t live_workers() const;
  size_t failed_workers() const { return workers_.size() - live_workers(); }

  static constexpr int64_t kProbeTimeoutMs = 2'000;

 private:
  // Marks the dropped workers that answer again as live (logged).
  void readmit(int64_t version);

  struct Worker {
    std::string address;
    std::unique_ptr<rollout::RolloutClient> client;
    bool alive = true;
    std::string last_error;
  };
  std::vector<Worker> workers_;  // the vector is fixed; alive and last_error are under mu_
  mutable std::mutex mu_;
  int64_t timeout_ms_;
  int reassign_rounds_;
};

}  // namespace grpo
