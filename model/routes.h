// The experts a MoE model's routers chose for the tokens of one sequence: what the rollout engine
// reports with a completion and what the trainer replays (routing replay, R3), so both run a token
// through the same experts. A plain value.
//
// Tokens are the positions the model is fed to score a completion: prompt + completion tokens
// except the last completion token (whose successor is never predicted), i.e. position t of the
// routes is the token at position t of prompt ++ completion. Layers are the MoE layers only, in
// model order (a dense layer, e.g. one of the first `first_k_dense_replace`, has no entry).
#pragma once
#include <cstdint>
#include <vector>

namespace grpo {

struct Routes {
  int64_t tokens = 0;  // positions covered
  int64_t layers = 0;  // MoE layers of the model
  int64_t top_k = 0;   // experts per token (num_experts_per_tok)
  // [tokens, layers, top_k] expert ids, row-major; each (token, layer) lists top_k distinct ids
  // < n_routed_experts in ascending order.
  std::vector<uint16_t> experts;

  bool empty() const { return experts.empty(); }
  // Expert ids of (token, layer): top_k of them from experts.data() + offset(token, layer).
  int64_t offset(int64_t token, int64_t layer) const { return (token * layers + layer) * top_k; }
};

}  // namespace grpo
