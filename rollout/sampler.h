// Choosing the next token of many sequences at once, reproducibly (docs/architecture.md §1, rollout).
//
// Every draw takes its uniform number from a counter-based generator (Philox-4x32-10) keyed by
// (seed, sample index, step): a sequence's tokens depend on its own logits and key only, never on
// which other sequences share the batch, the batch size, or preemption and recompute.
//
// Per row, with z = logits / T:
//  * T == 0 (greedy): token = argmax(logits); logprob = log_softmax(logits)[token] (the model's
//    own distribution at T = 1: a point mass would say nothing).
//  * T > 0: p = softmax(z); top_k > 0 keeps the k most likely tokens (ties with the k-th kept);
//    top_p < 1 then keeps the most likely tokens, in order, while the mass before each is below
//    top_p × (mass kept so far) — the smallest prefix holding top_p of it; the kept probabilities
//    are renormalised. The token is drawn by inverse CDF (descending-probability order when
//    truncating, vocabulary order otherwise); logprob = log of its renormalised probability
//    (log_softmax over the kept tokens), i.e. exactly the distribution it was drawn from. At T = 1 without truncation
//    that is log_softmax(logits)[token], what CausalLM::logprobs and `grpo logprobs` report.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace grpo::rollout {

struct SamplingParams {
  double temperature = 1.0;  // 0: greedy
  double top_p = 1.0;        // (0, 1]
  int64_t top_k = 0;         // 0: no top-k
  uint64_t seed = 0;
};

// Whether top-k or top-p can cut tokens from the distribution (T > 0; greedy rows are never cut).
bool truncates(const SamplingParams& p);

// Throws InputError naming the field (temperature, top_p, top_k) for values out of range.
void validate_sampling(const SamplingParams& p);

// Philox-4x32-10 of the counter (sample, step) under the key `seed`, as a uniform double in
// [0, 1) with 53 random bits.
double counter_uniform(uint64_t seed, uint64_t sample, uint64_t step);

// A plain value; `params` is borrowed, read only, and must outlive the sample_tokens() call.
struct SampleRow {
  const SamplingParams* params;
  uint64_t sample;  // sample index inside its request
  uint64_t step;    // index of the token being drawn in its completion
};

struct Draw {
  int64_t token;
  float logprob;
};

// logits: [N, V] (any float dtype, on any device; computed in fp32 there, the keys' uniforms made on
// the CPU); rows.size() == N. Each Draw's logprob is
// sampling_log_probs(logits, its params) at its token.
std::vector<Draw> sample_tokens(const at::Tensor& logits, const std::vector<SampleRow>& rows);

// The distribution each row is drawn from, as log-probabilities [N, V] fp32 (fp64 for fp64 logits): log_softmax(logits
// · (1/T)) over the kept tokens (top-k, then top-p, as above), −inf on the others; greedy rows (T = 0) get
// log_softmax(logits). The trainer scores completions with this same function, so its log-probs are those of the
// distribution the rollout sampled from (bit for bit on the same logits). Differentiable w.r.t. the logits (the kept
// set is chosen without gradient). Each row depends on its own logits and params only.
at::Tensor sampling_log_probs(const at::Tensor& logits, const std::vector<const SamplingParams*>& params);
// The same with one params for every row.
at::Tensor sampling_log_probs(const at::Tensor& logits, const SamplingParams& params);

}  // namespace grpo::rollout
