// `grpo reward-server`: serves RewardService (proto/reward.proto) until SIGINT/SIGTERM; with --http
// also the live view (http/monitor.h): verdicts per verifier, pool and outcome, verification time,
// queue depth and in-flight requests.
#include <cstring>
#include <iostream>

#include "common/cli.h"
#include "common/stop_signals.h"
#include "http/address.h"
#include "http/monitor.h"
#include "reward/server.h"

namespace {

// The server's verdicts as counters and a histogram of the time inside the verifier.
void count_verdicts(grpo::reward::ServerOptions& options, grpo::LiveMetrics& m) {
  options.on_verdict = [&m](const grpo::reward::VerdictEvent& v) {
    m.add("reward_server/verdicts", 1, "verdicts by verifier, pool (sandbox: a program ran) and outcome",
          {{"verifier", v.verifier}, {"pool", v.pool}, {"outcome", v.outcome}});
    m.observe("reward_server/verify_seconds", v.seconds, {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30},
              "seconds inside the verifier", {{"verifier", v.verifier}});
  };
}

// The server's health (queue depth, in-flight, refusals) read at each scrape.
void watch_health(const grpo::reward::RewardServer& server, grpo::LiveMetrics& metrics) {
  metrics.on_scrape([&server](grpo::LiveMetrics& m) {
    const auto h = server.health();
    m.set("reward_server/queued", double(h.queued()), "tasks waiting for a worker");
    m.set("reward_server/running", double(h.running()), "tasks inside a verifier");
    m.set("reward_server/pending_bytes", double(h.pending_bytes()), "request data held by queued and running tasks");
    m.set("reward_server/served", double(h.served()), "verdicts returned since start");
    m.set("reward_server/rejected", double(h.rejected()), "requests refused with RESOURCE_EXHAUSTED since start");
    m.set("reward_server/expired", double(h.expired()), "requests whose deadline passed in the queue since start");
    m.set("reward_server/workers", double(h.workers()), "verification threads of the default pool");
  });
}

int run_reward_server(const grpo::Args& a) {
  using namespace grpo::reward;
  grpo::StopSignals stop;  // before any thread starts

  grpo::Config config = grpo::config_from_args(a);
  grpo::apply_http_flag(a, config);
  ServerOptions options = server_options_from_config(config);
  auto registry = registry_from_config(config);
  if (grpo::dry_run(a)) {
    std::cout << config.dump() << "\n";
    return 0;
  }
  const std::string http_address = grpo::http_address_from(config);
  std::unique_ptr<grpo::Monitor> http;
  if (!http_address.empty()) {
    http = std::make_unique<grpo::Monitor>(grpo::MonitorOptions{http_address, "", "reward-server"});
    count_verdicts(options, http->metrics());
  }
  RewardServer server(registry, options);
  server.start();
  if (http) {
    watch_health(server, http->metrics());
    http->set_ready(true);
  }
  std::string names;
  for (const auto& n : registry->names()) names += (names.empty() ? "" : ", ") + n;
  std::cout << "reward-server listening on " << server.address() << " (" << options.workers
            << " workers; verifiers: " << names << ")" << std::endl;

  const int sig = stop.wait("reward-server");
  std::cerr << "reward-server: " << strsignal(sig) << ", shutting down (grace " << options.shutdown_grace_ms
            << " ms; a second signal exits at once)" << std::endl;
  if (http) http->set_ready(false);
  server.shutdown();
  http.reset();  // its scrapes read the server: it stops first
  std::cerr << "reward-server: stopped after " << server.health().served() << " verdicts" << std::endl;
  return 0;
}

}  // namespace

GRPO_COMMAND("reward-server", "serve the reward verifiers over gRPC (RewardService) until SIGINT/SIGTERM",
             "[CONFIG] [key.path=value ...]",
             ({{"config", "PATH", "reward config (or CONFIG; configs/reward.yaml documents the keys)", false},
               {"dry-run", "", "check the config, print it and exit", false},
               grpo::http_option()}),
             run_reward_server);
