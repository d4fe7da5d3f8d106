// Scores batches of verification requests with the verifiers of this process (a registry built
// from a reward config) or of a reward server (reward/client.h), the same way either side: one
// outcome per request, in request order. Used by `grpo verify` (reward/verify_jsonl.h) and
// `grpo eval` (eval/evaluate.h).
//
//   auto scorer = Scorer::local(Config::load("configs/reward.yaml"));   // or Scorer::remote(addr)
//   scorer.require("math");                         // UnknownVerifier / InputError naming the set
//   auto outcomes = scorer.score(requests, verifiers);
//
// Local: requests are scored by `threads` threads (reward/scoring.h rules); a request whose
// verifier throws gets the exception's text as its outcome's error. Remote: ScoreBatch calls of
// `batch` requests; a per-request error code becomes the outcome's error, a failed call
// (RpcError) propagates. Limits: the config's (local) or {0,0,0,0}, the server's own (remote).
//
// Thread-safety: const methods may be called from several threads at once. Owns its registry or
// its client.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "reward/client.h"
#include "reward/registry.h"
#include "reward/verifier.h"

namespace grpo::reward {

struct ScoreOutcome {
  VerifyResult result;
  std::string error;  // non-empty: the request could not be scored (result is default)
};

class Scorer {
 public:
  // The registry and limits of a reward config (reward/registry.h, reward/server.h).
  static Scorer local(const Config& reward_config);
  // The verifiers of the reward server at `address` (retries: 2).
  static Scorer remote(const std::string& address, int64_t timeout_ms);

  // Throws InputError naming the registered verifiers when `name` is not one of them.
  void require(const std::string& name) const;

  // verifiers[i] scores requests[i]; weights, when not empty, are per request (reward/scoring.h).
  // on_scored(n) is called (serially) as n more requests are done.
  std::vector<ScoreOutcome> score(const std::vector<VerifyRequest>& requests, const std::vector<std::string>& verifiers,
                                  const std::vector<std::map<std::string, double>>& weights = {}, int threads = 1,
                                  size_t batch = 64, const std::function<void(int64_t)>& on_scored = {}) const;

  const Limits& limits() const { return limits_; }
  bool is_remote() const { return client_ != nullptr; }

 private:
  Scorer() = default;
  std::shared_ptr<const VerifierRegistry> registry_;
  std::shared_ptr<const RewardClient> client_;
  std::vector<std::string> remote_names_;
  Limits limits_;
};

}  // namespace grpo::reward
