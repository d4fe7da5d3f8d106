// Scored groups as training tensors, and the policy's log-probs of their completion tokens.
//
// Row b of a batch is one sequence: prompt ids then completion ids, right-padded to the longest
// row. Position t of the [B, T-1] tensors is the prediction of token t+1 (as in
// DeepseekModel::logprobs); `mask` is 1 exactly where token t+1 is a completion token.
#pragma once
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>
#include "learner/scored_group.h"
#include "model/causal_lm.h"
#include "rollout/sampler.h"

namespace grpo {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct TrainBatch {
  at::Tensor ids;           // [B, T] int64, right-padded with the pad id
  at::Tensor mask;          // [B, T-1] value dtype: 1 on completion-token predictions
  at::Tensor rollout_logp;  // [B, T-1] the rollout engine's log-probs on the mask, 0 elsewhere
  at::Tensor rewards;       // [B] float64, groups contiguous
  at::Tensor lengths;       // [B] int64, prompt + completion tokens of each row
  int64_t group_size = 0;
  // Filled by the trainer:
  at::Tensor old_logp;    // [B, T-1] the policy's log-probs at the start of the update
  at::Tensor ref_logp;    // [B, T-1] the reference model's (when there is one)
  at::Tensor advantages;  // [B]
  // Routing replay (trainer.routing_replay): [B, T-1, L_moe, k] int64 experts every forward of the
  // rows uses (-1 at the padding); undefined: the routers choose.
  at::Tensor routes;

  int64_t rows() const { return ids.size(0); }
  double tokens() const;  // completion tokens (sum of mask)
  // The rows `index` ([n] int64) with every defined tensor, trimmed to the longest chosen row.
  TrainBatch select(const at::Tensor& index) const;
  // Every defined tensor on `device` (the same batch when they are there already).
  TrainBatch to(at::Device device) const;
};

// Limits checked while building a batch.
struct TrainBatchLimits {
  int64_t vocab_size = 0;   // token ids must lie in [0, vocab_size)
  int64_t max_seq_len = 0;  // prompt + completion tokens per row (0: no limit)
  // Overlong filtering (DAPO): completions cut at the length limit (FinishReason::kLength) keep
  // their reward in the advantages but get no loss (mask 0).
  bool mask_truncated = false;
};

// `groups` -> TrainBatch (without old_logp/ref_logp/advantages). Every group must have the same
// G >= 1, a non-empty prompt, and every completion as many logprobs as token_ids; a completion
// may be empty (it then has no tokens in the mask). Errors are InputErrors naming the group
// (index and prompt_id), the completion and the field. `dtype` (kFloat or kDouble) is the dtype
// of the mask and log-prob tensors; `pad_id` fills the padding.
TrainBatch make_train_batch(const std::vector<ScoredGroup>& groups, const TrainBatchLimits& limits, int64_t pad_id,
                            at::ScalarType dtype);

// The model's MoE shape, which routes must match (LmSpec's moe_layers, num_experts_per_tok, n_routed_experts).
struct RouteShape {
  int64_t layers = 0, top_k = 0, experts = 0;
};

// The groups' completion routes as TrainBatch::routes for rows of `width` + 1 tokens (the batch's
// T), rows in make_train_batch's order. InputError naming the group (index and prompt_id), the
// completion and, where it applies, the token and MoE layer: a completion without routes ("routing_replay: rollout
// needs routes"), routes whose layers or top_k differ from `shape`, that do not cover prompt +
// completion − 1 positions, or with an expert id >= shape.experts.
at::Tensor replay_routes(const std::vector<ScoredGroup>& groups, const RouteShape& shape, int64_t width);

// One forward of `model` over rows.ids [b, T] (no grad unless autograd is on) with the head applied
// at the masked positions only. Only the positions that predict a token of their row (p + 1 <
// length) go through the routed experts and count in the expert loads: a row's last token and
// the padding do not, so the loads and the experts' gradients do not depend on how rows are
// grouped into micro-batches or ranks.
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct CompletionForward {
  at::Tensor logp;                      // [b, T-1] log p(ids[:, t+1]) on the mask, 0 elsewhere
  at::Tensor entropy;                   // [b, T-1] entropy of the next-token distribution on the mask
  std::vector<at::Tensor> expert_load;  // per decoder layer [E] int64 tokens routed (undefined: dense)
  at::Tensor routes;  // [b, T-1, L_moe, k] int64 experts used (-1 off the routed positions; undefined: dense)
  at::Tensor chosen;  // the same for the routers' own choice (differs from `routes` where replay forced others)
};
// With rows.routes, the forward replays them (routing replay).
// The distribution is the one the rollout sampled from: rollout::sampling_log_probs with the
// rollout's temperature, top-p and top-k (`sampling`; its seed is unused), so that the ratios
// compare like with like. A token outside the kept set (the policy moved since it was sampled) is
// scored under the untruncated softmax(logits / T), so its log-prob stays finite. Without grad
// mode the model runs its batch-invariant kernels (model/batch_invariant.h): a row's log-probs do
// not depend on the other rows, and equal the rollout engine's bit for bit on the same weights.
// The entropy is that of softmax(logits / T). `entropy_grad`: keep the entropy in the autograd
// graph (an entropy bonus); otherwise it is detached.
// `pack`: the rows go through the model as one packed row (Feed::packed: each row's positions
// that predict a token, back to back, no padding), so the work scales with the real tokens; the
// same values as the padded forward up to rounding (the products' sums are grouped differently).
CompletionForward completion_forward(const CausalLM& model, const TrainBatch& rows, bool entropy_grad = false,
                                     const rollout::SamplingParams& sampling = {}, bool pack = false);

// Under expert parallelism, what a rank's share of a batch needs besides its rows: every rank runs
// the same number of forward (and backward) passes, because each MoE layer's all-to-all is a
// collective. A rank whose rows run out first makes the remaining passes without rows of its own
// (its experts still serve the other ranks' rows).
struct RankPart {
  int64_t passes = 0;  // passes every rank runs (at least what its own rows need)
  double whole = 0;    // accumulate_minibatch: the loss normaliser of all ranks' rows together
};

// The log-probs of batch.mask's positions under `model`, without grad, `rows_per_forward` rows at a
// time (rows of similar length together): [B, T-1], 0 off the mask. With `part`, part->passes
// forwards in all. With `routes` (MoE models): also the experts the forwards' routers chose
// themselves (CompletionForward::chosen: without replay, the experts used), [B, T-1, L_moe, k]
// int64 (-1 at the padding), as TrainBatch::routes takes them.
// `pack`: each forward's rows packed (completion_forward); in the no-grad fp32/bf16 path the
// log-probs are the padded ones bit for bit (batch-invariant kernels, attention within each row).
at::Tensor completion_logprobs(const CausalLM& model, const TrainBatch& batch, int64_t rows_per_forward,
                               const rollout::SamplingParams& sampling = {}, const RankPart* part = nullptr,
                               at::Tensor* routes = nullptr, bool pack = false);

// Passes of `rows_per_forward` rows that `rows` rows need: ceil(rows / rows_per_forward).
int64_t forward_passes(int64_t rows, int64_t rows_per_forward);

}  // namespace grpo
