#include "reward/wire.h"

#include <algorithm>

#include "common/json_parse.h"
#include "common/utf8.h"

namespace grpo::reward {
namespace {

int64_t effective_limit(const char* field, int64_t requested, int64_t server) {
  if (requested < 0)
    throw InputError(std::string("limits.") + field + ": must be >= 0, got " + std::to_string(requested));
  return requested == 0 ? server : std::min(requested, server);
}

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

VerifyRequest request_from_proto(const v1::ScoreRequest& r, const Limits& server) {
  VerifyRequest out;
  out.completion = r.completion();
  if (r.reference_is_json()) {
    out.reference = parse_json(r.reference(), "reference", server.max_json_depth);
  } else {
    out.reference = r.reference();
  }
  if (!r.options().empty()) {
    out.options = parse_json(r.options(), "options", server.max_json_depth);
    if (!out.options.is_object() && !out.options.is_null())
      throw InputError("options: expected a JSON object, got " + dump(out.options));
  }
  const v1::Limits& l = r.limits();
  out.limits.timeout_ms = effective_limit("timeout_ms", l.timeout_ms(), server.timeout_ms);
  out.limits.cpu_ms = effective_limit("cpu_ms", l.cpu_ms(), server.cpu_ms);
  out.limits.memory_mb = effective_limit("memory_mb", l.memory_mb(), server.memory_mb);
  out.limits.max_completion_bytes =
      effective_limit("max_completion_bytes", l.max_completion_bytes(), server.max_completion_bytes);
  if (r.completion_tokens() < 0)
    throw InputError("completion_tokens: must be >= 0, got " + std::to_string(r.completion_tokens()));
  out.completion_tokens = r.completion_tokens();
  return out;
}

v1::ScoreRequest request_to_proto(const VerifyRequest& r, const std::string& verifier, const std::string& id) {
  v1::ScoreRequest out;
  out.set_id(id);
  out.set_verifier(verifier);
  out.set_completion(r.completion);
  if (r.reference.is_string()) {
    out.set_reference(r.reference.get<std::string>());
  } else if (!r.reference.is_null()) {
    out.set_reference(dump(r.reference));
    out.set_reference_is_json(true);
  }
  if (!r.options.is_null()) out.set_options(dump(r.options));
  v1::Limits* l = out.mutable_limits();
  l->set_timeout_ms(r.limits.timeout_ms);
  l->set_cpu_ms(r.limits.cpu_ms);
  l->set_memory_mb(r.limits.memory_mb);
  l->set_max_completion_bytes(r.limits.max_completion_bytes);
  out.set_completion_tokens(r.completion_tokens);
  return out;
}

void result_to_proto(const VerifyResult& r, v1::ScoreResponse* out) {
  out->set_reward(r.reward);
  out->set_correct(r.correct);
  auto* components = out->mutable_components();
  for (const auto& [name, value] : r.components) (*components)[utf8::sanitize(name)] = value;
  out->set_reason(utf8::sanitize(r.reason));
  out->set_extracted(utf8::sanitize(r.extracted));
}

VerifyResult result_from_proto(const v1::ScoreResponse& r) {
  VerifyResult out;
  out.reward = r.reward();
  out.correct = r.correct();
  out.components.insert(r.components().begin(), r.components().end());
  out.reason = r.reason();
  out.extracted = r.extracted();
  return out;
}

}  // namespace grpo::reward
