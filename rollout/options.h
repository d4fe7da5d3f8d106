// The rollout side's config sections, each parsed here and nowhere else (gRPC-free, so `grpo
// train`'s run config, `grpo rollout-server`'s config and the CPU-only build share them):
//
//   engine:   {page_size, num_pages, max_seqs, max_batched_tokens, max_new_tokens_limit,
//              max_context, max_queued_requests}                       -> EngineOptions (engine.h)
//   sampling: {temperature, top_p, top_k, max_new_tokens}                -> GenerationParams (engine.h)
//   server:   {address, max_message_mb, max_update_mb, max_prompts_per_call, max_calls,
//              shutdown_grace_ms, update_timeout_ms}                    -> ServerOptions
//
// Each parser takes the section itself (config.sub("engine")) and the defaults to start from, so
// a caller with other defaults (the run config's larger engine) keeps them. An unknown key or a
// value out of range is an InputError naming the file and the key (configs/rollout.yaml
// documents them). Pure functions.
#pragma once
#include <cstdint>
#include <string>

#include "common/config.h"
#include "rollout/engine.h"

namespace grpo::rollout {

// The RolloutService server's limits (rollout/service/server.h).
struct ServerOptions {
  std::string address = "127.0.0.1:0";    // port 0 picks a free port
  int max_message_bytes = 64 << 20;       // largest message received or sent
  int64_t max_update_bytes = 64LL << 30;  // bytes of one weight update (all tensors)
  int64_t max_prompts_per_call = 4096;    // prompts in one Generate call
  int64_t max_calls = 1024;               // Generate calls in progress (parked ones included)
  int64_t shutdown_grace_ms = 5'000;      // in-flight calls get this long, then are cancelled
  int64_t update_timeout_ms = 600'000;    // every part of a weight version within this of the first
};

// Every key >= 1 except max_context (0 = the model's) and max_batched_tokens (>= max_seqs; its
// default is raised to max_seqs).
EngineOptions engine_options_from_config(const Config& section, EngineOptions defaults = {});

// temperature >= 0 (0 = greedy), top_p in (0, 1], top_k >= 0 (0 = all), max_new_tokens >= 1
// (rollout/sampler.h's rules). The seed and the stop lists are the caller's.
GenerationParams generation_params_from_config(const Config& section, GenerationParams defaults = {});

// max_message_mb in 1..2047 (gRPC's limit), max_update_mb, max_prompts_per_call, max_calls and
// update_timeout_ms >= 1, shutdown_grace_ms >= 0.
ServerOptions server_options_from_config(const Config& section, ServerOptions defaults = {});

}  // namespace grpo::rollout
