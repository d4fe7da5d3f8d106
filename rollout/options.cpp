#include "rollout/options.h"

#include <algorithm>

#include "common/config_range.h"
#include "common/error.h"
#include "common/host_port.h"
#include "rollout/sampler.h"

namespace grpo::rollout {
EngineOptions engine_options_from_config(const Config& c, EngineOptions o) {
  c.require_known({"page_size", "num_pages", "max_seqs", "max_batched_tokens", "max_new_tokens_limit", "max_context",
                   "max_queued_requests", "gpu_memory_fraction", "speculative", "speculative_max_seqs"});
  o.page_size = config_at_least<int64_t>(c, "page_size", o.page_size, 1);
  o.num_pages = config_at_least<int64_t>(c, "num_pages", o.num_pages, 1);
  o.max_seqs = config_at_least<int64_t>(c, "max_seqs", o.max_seqs, 1);
  o.max_batched_tokens =
      config_at_least<int64_t>(c, "max_batched_tokens", std::max(o.max_batched_tokens, o.max_seqs), o.max_seqs);
  o.max_new_tokens_limit = config_at_least<int64_t>(c, "max_new_tokens_limit", o.max_new_tokens_limit, 1);
  o.max_context = config_at_least<int64_t>(c, "max_context", o.max_context, 0);
  o.max_queued_requests = config_at_least<int64_t>(c, "max_queued_requests", o.max_queued_requests, 1);
  o.gpu_memory_fraction = c.get<double>("gpu_memory_fraction", o.gpu_memory_fraction);
  if (!(o.gpu_memory_fraction >= 0 && o.gpu_memory_fraction <= 1))
    throw InputError(c.where("gpu_memory_fraction") + ": expected a number in [0, 1], got " +
                     std::to_string(o.gpu_memory_fraction));
  o.speculative = c.get<bool>("speculative", o.speculative);
  o.speculative_max_seqs = config_at_least<int64_t>(c, "speculative_max_seqs", o.speculative_max_seqs, 0);
  return o;
}

GenerationParams generation_params_from_config(const Config& c, GenerationParams g) {
  c.require_known({"temperature", "top_p", "top_k", "max_new_tokens"});
  g.sampling.temperature = c.get<double>("temperature", g.sampling.temperature);
  g.sampling.top_p = c.get<double>("top_p", g.sampling.top_p);
  g.sampling.top_k = c.get<int64_t>("top_k", g.sampling.top_k);
  g.max_new_tokens = c.get<int64_t>("max_new_tokens", g.max_new_tokens);
  if (g.max_new_tokens <= 0)
    throw InputError(c.where("max_new_tokens") + ": expected a positive integer, got " +
                     std::to_string(g.max_new_tokens));
  try {
    validate_sampling(g.sampling);
  } catch (const InputError& e) {  // "field: why" -> "file: key 'section.field': why"
    const std::string m = e.what();
    const size_t colon = m.find(':');
    throw InputError(c.where(m.substr(0, colon)) + m.substr(colon));
  }
  return g;
}

ServerOptions server_options_from_config(const Config& c, ServerOptions o) {
  c.require_known({"address", "max_message_mb", "max_update_mb", "max_prompts_per_call", "max_calls",
                   "shutdown_grace_ms", "update_timeout_ms"});
  o.address = c.get<std::string>("address", o.address);
  check_port(o.address, c.where("address"), 0);
  const int64_t message_mb = config_at_least<int64_t>(c, "max_message_mb", o.max_message_bytes >> 20, 1);
  if (message_mb > 2047) throw InputError(c.where("max_message_mb") + ": must be < 2048 (gRPC's limit)");
  o.max_message_bytes = static_cast<int>(message_mb << 20);
  o.max_update_bytes = config_at_least<int64_t>(c, "max_update_mb", o.max_update_bytes >> 20, 1) << 20;
  o.max_prompts_per_call = config_at_least<int64_t>(c, "max_prompts_per_call", o.max_prompts_per_call, 1);
  o.max_calls = config_at_least<int64_t>(c, "max_calls", o.max_calls, 1);
  o.shutdown_grace_ms = config_at_least<int64_t>(c, "shutdown_grace_ms", o.shutdown_grace_ms, 0);
  o.update_timeout_ms = config_at_least<int64_t>(c, "update_timeout_ms", o.update_timeout_ms, 1);
  return o;
}

}  // namespace grpo::rollout
