// RewardServer: serves proto/reward.proto for a VerifierRegistry.
//
//   auto registry = registry_from_config(cfg);
//   RewardServer server(registry, server_options_from_config(cfg));
//   server.start();                       // binds; server.address() is the bound host:port
//   ...                                   // serve until
//   server.shutdown();                    // stops accepting, finishes in-flight work
//
// gRPC's callback API receives requests; verification runs on a BoundedExecutor of
// `workers` threads with at most `max_queue` waiting tasks holding at most max_pending_bytes of
// request data. When either is full a call is refused at once with RESOURCE_EXHAUSTED, so memory
// stays bounded however fast clients send. A task whose call deadline passed while it waited is
// answered DEADLINE_EXCEEDED without running; a running verifier gets its timeout lowered to the
// time left. Bad requests get a status (see proto/reward.proto), never a crash: verifier
// exceptions become INTERNAL (InputError: INVALID_ARGUMENT) and the server keeps serving.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/config.h"
#include "proto/reward.pb.h"
#include "reward/registry.h"

namespace grpo::reward {

// One worker pool: its threads and how many tasks may wait for them.
struct PoolOptions {
  int workers = 4;
  int max_queue = 1024;  // tasks waiting for a worker; more -> RESOURCE_EXHAUSTED
};

// One scored request, as ServerOptions::on_verdict sees it.
struct VerdictEvent {
  std::string verifier, pool;  // the request's verifier and the pool it ran in ("sandbox": a program ran)
  std::string outcome;         // "correct", "wrong" or "error" (the verifier failed)
  double seconds = 0;          // inside the verifier
};

struct ServerOptions {
  std::string address = "127.0.0.1:50051";  // port 0 picks a free port
  int workers = 4;                          // verification threads of the default pool
  int max_queue = 1024;                     // tasks waiting for a worker; more -> RESOURCE_EXHAUSTED
  // The other pools (Verifier::pool(): "sandbox", "remote", or one a verifier of yours names),
  // each with its own threads and queue; a pool not listed gets workers/max_queue above. A
  // request runs in its verifier's pool (a composite: in its slowest part's), so a cheap verdict
  // never waits behind sandboxed runs. Config: server.pools.<name>.{workers,max_queue}.
  std::map<std::string, PoolOptions> pools;
  int64_t max_pending_bytes = 1LL << 30;  // request data held by admitted (queued or running)
                                          // requests; more -> RESOURCE_EXHAUSTED
  int max_message_bytes = 64 << 20;       // largest request or response
  int stream_window = 64;                 // unanswered requests one ScoreStream may have
  int64_t shutdown_grace_ms = 5'000;      // in-flight calls get this long, then are cancelled
  Limits limits;                          // the ceilings requests may lower
  // Called on the worker after each request a verifier ran (the live view's counters); must be
  // thread-safe and quick. Empty: none.
  std::function<void(const VerdictEvent&)> on_verdict;
};

// From the reward config's `server` and `limits` sections (configs/reward.yaml documents them).
// Errors name the file and key.
ServerOptions server_options_from_config(const Config& config);

// Thread-safety: start() once, first; then shutdown(), wait(), health() from any thread. Owns its gRPC server, workers.
class RewardServer {
 public:
  RewardServer(std::shared_ptr<const VerifierRegistry> registry, ServerOptions options);
  ~RewardServer();  // shutdown()

  // Binds and starts serving. Throws InputError naming the address when it cannot be bound.
  void start();
  // The bound address, e.g. "127.0.0.1:41234" (valid after start()).
  const std::string& address() const;
  // Stops accepting calls, gives in-flight ones shutdown_grace_ms, then stops the workers.
  // Idempotent; safe to call from another thread than the one in wait().
  void shutdown();
  // Blocks until shutdown() has completed.
  void wait();
  v1::HealthResponse health() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo::reward
