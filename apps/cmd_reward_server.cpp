// `grpo reward-server`: serves RewardService (proto/reward.proto) until SIGINT/SIGTERM.
#include <cstring>
#include <iostream>

#include "common/cli.h"
#include "common/stop_signals.h"
#include "reward/server.h"

namespace {

int run_reward_server(const grpo::Args& a) {
  using namespace grpo::reward;
  grpo::StopSignals stop;  // before any thread starts

  grpo::Config config = grpo::config_from_args(a);
  ServerOptions options = server_options_from_config(config);
  auto registry = registry_from_config(config);
  if (grpo::dry_run(a)) {
    std::cout << config.dump() << "\n";
    return 0;
  }
  RewardServer server(registry, options);
  server.start();
  std::string names;
  for (const auto& n : registry->names()) names += (names.empty() ? "" : ", ") + n;
  std::cout << "reward-server listening on " << server.address() << " (" << options.workers
            << " workers; verifiers: " << names << ")" << std::endl;

  const int sig = stop.wait("reward-server");
  std::cerr << "reward-server: " << strsignal(sig) << ", shutting down (grace " << options.shutdown_grace_ms
            << " ms; a second signal exits at once)" << std::endl;
  server.shutdown();
  std::cerr << "reward-server: stopped after " << server.health().served() << " verdicts" << std::endl;
  return 0;
}

}  // namespace

GRPO_COMMAND("reward-server", "serve the reward verifiers over gRPC (RewardService) until SIGINT/SIGTERM",
             "[CONFIG] [key.path=value ...]",
             ({{"config", "PATH", "reward config (or CONFIG; configs/reward.yaml documents the keys)", false},
               {"dry-run", "", "check the config, print it and exit", false}}),
             run_reward_server);
