// Offline generation from a checkpoint directory, the path of `grpo generate` and `grpo eval`:
// load the checkpoint, generate every request to completion, return the completions ordered by
// request then sample with Completion::request_id = the request's index. Either model family
// (load_causal_lm) runs on the paged engine (rollout/engine.h, `engine` options; the queue holds
// every request).
//
// A request the engine refuses is an InputError "prompt NAME: ..." (names[i], else i). `on_done`
// (optional) is called on the calling thread as each completion finishes. Not re-entrant with
// respect to torch's thread count (the caller sets it).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/model_options.h"
#include "rollout/engine.h"
#include "tokenizer/tokenizer.h"

namespace grpo::rollout {

// Where the time went (`timing`, optional): loading the checkpoint onto its device, then generating
// every request (prefill and decode, until the last completion), and what was generated.
struct OfflineTiming {
  double load_s = 0, generate_s = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  int64_t draft_tokens = 0, accepted_drafts = 0;  // speculative decoding (EngineStats)
};

std::vector<Completion> generate_offline(const std::string& model_dir, const ModelOptions& model_options,
                                         const std::vector<Request>& requests, const Tokenizer* tokenizer,
                                         const EngineOptions& engine, const std::vector<std::string>& names = {},
                                         const std::function<void(const Completion&)>& on_done = {},
                                         OfflineTiming* timing = nullptr);

}  // namespace grpo::rollout
