// `grpo verify`'s stream: JSONL completions in, one JSON line out per line in, scored with one
// verifier through a Scorer (reward/scorer.h).
//
//   in : {"completion": "...", "reference": "42" | {...}, "id": ..., "options": {...},
//         "completion_tokens": N, "weights": {"accuracy": 1.0}}      (all but completion optional)
//   out: {"id": ..., "reward": 1.0, "correct": true, "reason": "...", "components": {...},
//         "extracted": "..."}   or, for a line that could not be scored,
//        {"line": 3, "id": ..., "error": "..."}
//
// Blank lines are skipped. A line's "options" are merged (JSON merge patch) over
// VerifyJsonlOptions::options. Lines are scored `batch` at a time and written, in order, as each
// batch is done (output is flushed per batch). Pure function of its inputs; not thread-safe on the
// same streams.
#pragma once
#include <cstdint>
#include <istream>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "reward/scorer.h"

namespace grpo::reward {

struct VerifyJsonlOptions {
  std::string verifier;    // required; checked with Scorer::require before the first line
  nlohmann::json options;  // null or an object: verifier options for every line
  int64_t batch = 64;      // >= 1
};

// Returns the number of lines that could not be scored. Throws InputError for bad options, an
// unknown verifier, RpcError when a reward server call fails.
int64_t verify_jsonl(const Scorer& scorer, const VerifyJsonlOptions& options, std::istream& in, std::ostream& out);

}  // namespace grpo::reward
