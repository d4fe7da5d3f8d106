// The services `grpo train` starts in its own process when the config names no remote ones: a
// RewardService (reward.config) and rollout.workers RolloutServices, each with its own engine on
// its own copy of the policy, all on 127.0.0.1 with free ports. The controller talks to them over
// gRPC exactly as to remote ones; shutting down happens in the destructor.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "train/run_config.h"

namespace grpo {
class Tokenizer;
namespace reward {
class RewardServer;
}
namespace rollout {
class RolloutServer;
}

class LocalServices {
 public:
  explicit LocalServices(const RunConfig& run);
  ~LocalServices();

  // Where the controller finds the services: the configured remote ones, or the local ones.
  const std::string& reward_address() const { return reward_address_; }
  const std::vector<std::string>& rollout_addresses() const { return rollout_addresses_; }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<reward::RewardServer> reward_;
  std::vector<std::unique_ptr<rollout::RolloutServer>> rollouts_;
  std::string reward_address_;
  std::vector<std::string> rollout_addresses_;
};

}  // namespace grpo
