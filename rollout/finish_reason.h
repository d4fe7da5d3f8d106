// Why a completion ended. One enum for the engine, the RolloutService's wire form and the scored
// groups in the experience store (whose byte encoding uses these values: never renumber).
#pragma once
#include <cstdint>

namespace grpo::rollout {

enum class FinishReason : uint8_t {
  kStop = 0,    // a stop token id or stop string (in the store: also the end-of-sequence token)
  kLength = 1,  // max_new_tokens or the context: truncated
  kAbort = 2,   // cancelled before it finished (shutdown, weight update mid-flight)
  kEos = 3,     // the model's end-of-sequence token
};

// "stop", "length", "abort", "eos".
constexpr const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kEos: return "eos";
  }
  return "unknown";
}

}  // namespace grpo::rollout
