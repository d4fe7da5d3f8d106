// `grpo reward-server`: serves RewardService (proto/reward.proto) until SIGINT/SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "common/cli.h"
#include "reward/server.h"

namespace {

grpo::Config load_config(const grpo::Args& a) {
  if (a.has("config")) return grpo::Config::load(a.get("config"), a.overrides());
  grpo::Config c = grpo::Config::parse("", "<defaults>");
  for (const auto& o : a.overrides()) c.apply_override(o);
  return c;
}

int run_reward_server(const grpo::Args& a) {
  using namespace grpo::reward;
  if (!a.positional().empty()) throw grpo::InputError("reward-server: unexpected argument '" + a.positional()[0] + "'");
  // Block the stop signals before any thread starts (gRPC's inherit the mask); sigwait below
  // receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  grpo::Config config = load_config(a);
  ServerOptions options = server_options_from_config(config);
  auto registry = registry_from_config(config);
  RewardServer server(registry, options);
  server.start();
  std::string names;
  for (const auto& n : registry->names()) names += (names.empty() ? "" : ", ") + n;
  std::cout << "reward-server listening on " << server.address() << " (" << options.workers << " workers; verifiers: "
            << names << ")" << std::endl;

  int sig = 0;
  sigwait(&stop, &sig);
  std::cerr << "reward-server: " << strsignal(sig) << ", shutting down (grace " << options.shutdown_grace_ms
            << " ms; a second signal exits at once)" << std::endl;
  std::thread([stop] {
    int again = 0;
    sigwait(&stop, &again);
    std::cerr << "reward-server: " << strsignal(again) << " again, exiting now" << std::endl;
    std::_Exit(1);
  }).detach();
  server.shutdown();
  std::cerr << "reward-server: stopped after " << server.health().served() << " verdicts" << std::endl;
  return 0;
}

}  // namespace

GRPO_COMMAND("reward-server", "serve the reward verifiers over gRPC (RewardService) until SIGINT/SIGTERM",
             "[key.path=value ...]",
             ({{"config", "PATH", "reward config (configs/reward.yaml documents the keys)", false}}),
             run_reward_server);
