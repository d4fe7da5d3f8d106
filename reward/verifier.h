// The contract every reward verifier implements (built-in math/code/format and users' own).
//
// A verifier is a pure-ish function of (completion, reference, options) -> reward. It must never
// throw on bad model output: malformed completions get reward 0 and a reason. It throws
// grpo::InputError only for a bad *request* (missing reference fields, wrong types), which the
// server turns into INVALID_ARGUMENT.
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "common/error.h"
#include "common/json_parse.h"

namespace grpo::reward {

// Per-request limits; the server fills them from its config, requests may lower them.
struct Limits {
  int64_t max_completion_bytes = 1 << 20;  // longer completions: reward 0, reason "too long"
  int64_t timeout_ms = 10'000;             // wall time for one verification (code runs)
  int64_t cpu_ms = 10'000;                 // CPU time for sandboxed code
  int64_t memory_mb = 1024;                // address-space limit for sandboxed code
  int max_json_depth = kMaxInputDepth;     // deepest nesting of a JSON reference or options
};

struct VerifyRequest {
  std::string completion;    // the model's whole answer (may include <think>…</think>)
  nlohmann::json reference;  // math: "42" or {"answer": "42"}; code: see reward/code/verifier.h
  nlohmann::json options;    // verifier-specific knobs (object; may be null)
  Limits limits;
  int64_t completion_tokens = 0;  // length in model tokens when the caller knows it; 0 = unknown
};

struct VerifyResult {
  double reward = 0.0;                       // total, as the trainer will use it
  bool correct = false;                      // the accuracy verdict
  std::map<std::string, double> components;  // named parts: "accuracy", "format", "length", ...
  std::string reason;                        // short human-readable verdict, e.g. "equal: 1/2 == 0.5"
  std::string extracted;                     // the final answer the verifier extracted (if any)
};

// The reward server's worker pools (ServerOptions::pools): each has its own threads and queue
// bound, so the requests of a slow kind of verifier never wait behind those of another.
inline constexpr const char* kDefaultPool = "default";  // in-process checks: math, format, ...
inline constexpr const char* kSandboxPool = "sandbox";  // runs candidate programs (code)
inline constexpr const char* kRemotePool = "remote";    // calls a plugin service

// Thread-safety: verify() must be thread-safe (below); instances are shared read-only (shared_ptr<const Verifier>).
class Verifier {
 public:
  virtual ~Verifier() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // Thread-safe: the server calls it from many threads at once.
  virtual VerifyResult verify(const VerifyRequest& request) const = 0;
  // The pool that runs this verifier's requests on the reward server.
  virtual std::string pool() const { return kDefaultPool; }
};

}  // namespace grpo::reward
