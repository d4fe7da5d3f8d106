// RolloutServer: serves proto/rollout.proto for one Engine (rollout/engine.h).
//
//   auto engine = std::make_shared<Engine>(model, /*version=*/0, engine_options, &tokenizer);
//   RolloutServer server(engine, server_options);
//   server.start();                 // binds (server.address()), starts the engine's step thread
//   ...
//   server.shutdown();              // stops accepting, gives calls the grace, stops the thread
//
// The server owns the engine loop: one thread steps the engine while it has work, polls the
// finished completions and hands each to the Generate call that asked for it, which streams it at
// once. gRPC's callback API receives the calls; no gRPC thread ever runs the model or waits.
//
// Generate: all prompts are validated first (Engine::validate; INVALID_ARGUMENT naming
// "prompts[i]") and submitted together, or, while the weights are older than
// min_weight_version, parked until an UpdateWeights brings them (FAILED_PRECONDITION a margin
// before the deadline). A call that ends early (cancelled, deadline, broken stream) cancels its
// unfinished requests in the engine (Engine::cancel), so their pages are freed.
//
// UpdateWeights: one version at a time (ABORTED for another), in one call or in part_count parts
// sent by concurrent calls (UpdateBegin in proto/rollout.proto). Chunks are checked as they arrive
// (order, offsets, sizes, tensor names across parts, max_update_bytes over all parts) and copied
// into tensors allocated from each tensor's header; when every part's stream ended complete,
// Engine::set_weights validates and hands the union over on a thread of the server (the engine
// swaps them between two steps), and every part's call returns. A version whose parts are not all
// complete within update_timeout_ms is dropped. Any error leaves the old weights serving. See
// proto/rollout.proto for every status code.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "common/config.h"
#include "proto/rollout.pb.h"
#include "rollout/engine.h"
#include "rollout/options.h"

namespace grpo::rollout {

// Generate waits for min_weight_version at most until this long before the call's deadline.
inline constexpr int64_t kVersionWaitMarginMs = 100;

class RolloutServer {
 public:
  RolloutServer(std::shared_ptr<Engine> engine, ServerOptions options);
  ~RolloutServer();  // shutdown()
  RolloutServer(const RolloutServer&) = delete;
  RolloutServer& operator=(const RolloutServer&) = delete;

  // Binds and starts serving and the engine loop. Throws InputError naming the address when it
  // cannot be bound.
  void start();
  // The bound address, e.g. "127.0.0.1:41234" (valid after start()).
  const std::string& address() const;
  // Stops accepting calls, answers parked Generate calls UNAVAILABLE, gives the others
  // shutdown_grace_ms, then stops the engine loop. Idempotent.
  void shutdown();
  // Blocks until shutdown() has completed.
  void wait();
  v1::StatusResponse status() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo::rollout
