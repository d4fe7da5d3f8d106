// Generation for dense decoders (model/dense_decoder.h), which the paged MLA engine
// (rollout/engine.h) does not run: each request's n samples are decoded together with the
// sequences of other requests, up to max_batch sequences at a time, prompts left-padded, one
// DenseKvCache per batch. Tokens are chosen by the rollout sampler with the engine's keys
// (seed, sample index, token index), so a seeded or greedy completion does not depend on the
// batch it ran in, and finishing follows the engine's rules (finish_reason_after).
#pragma once
#include <functional>
#include <vector>

#include "model/dense_decoder.h"
#include "rollout/engine.h"
#include "tokenizer/tokenizer.h"

namespace grpo::rollout {

// Completions of every request, ordered by request then sample; Completion::request_id is the
// request's index. `tokenizer` (optional) gives Completion::text and stop strings and adds its EOS
// to the model's. Requests are validated first (InputError "requests[i]: ..." naming the field).
// `on_done` (optional) is called as each completion finishes.
std::vector<Completion> dense_generate(const DenseDecoder& model, const std::vector<Request>& requests,
                                       const Tokenizer* tokenizer = nullptr, int64_t max_batch = 64,
                                       const std::function<void(const Completion&)>& on_done = {});

}  // namespace grpo::rollout
