// Speculative sampling of one position (Leviathan et al., "Fast Inference from Transformers via
// Speculative Decoding", 2023; Chen et al., "Accelerating Large Language Model Decoding with
// Speculative Sampling", 2023), for drafts from the model's MTP module (docs/architecture.md §1).
//
// A draft token d, drawn from the draft distribution q, is kept with probability min(1, p(d)/q(d));
// otherwise the token is drawn from the residual norm(max(0, p − q)). Whatever q is, the token is
// then distributed exactly as the target p: the draft only changes how many forwards a completion
// takes, never what it samples from, so the log-prob recorded for the token is log p(token), the
// value the trainer recomputes.
//
// Keys: every uniform comes from counter_uniform (sampler.h) keyed by (seed, sample, step) like
// the sampler's own draws, with the step tagged by its use (draft_step, accept_step, residual_step
// of the token's index), so the draws of a completion never depend on the batch around it.
#pragma once
#include <cstdint>

namespace grpo::rollout {

// Steps of the three speculative draws of the token at index `step` of a completion (disjoint from
// the sampler's own steps, which stay below 2^62).
uint64_t draft_step(uint64_t step);
uint64_t accept_step(uint64_t step);
uint64_t residual_step(uint64_t step);

struct Verdict {
  int64_t token;
  bool accepted;  // token == the draft
};

// logp, logq: [v] log-probabilities (sampling_log_probs rows, −inf for tokens cut by top-k/top-p) of
// the target and of the draft distribution; `draft` was drawn from q (q(draft) > 0). Keeps the draft
// when u_accept · q(draft) < p(draft); else draws from the residual by inverse CDF in vocabulary
// order with u_residual (from p itself where rounding leaves the residual empty). Pure; sums in fp64.
Verdict verify_draft(const float* logp, const float* logq, int64_t v, int64_t draft, double u_accept,
                     double u_residual);

}  // namespace grpo::rollout
