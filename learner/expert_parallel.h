// Expert parallelism (DeepSeek-V3 §3.4 style, on learner/distributed.h): rank r of EP holds the
// routed experts [r·E/EP, (r+1)·E/EP) of every MoE layer; everything else (attention, router,
// shared experts, embeddings) is replicated and trained data-parallel on the rank's share of the
// batch.
//
// One MoE layer on one rank (N local tokens, top-k routing):
//   1. the (token, expert) pairs are sorted by expert, so they are grouped by owning rank;
//   2. the per-expert counts are exchanged (all-to-all of [EP, E/EP] counts), giving the split
//      sizes of both directions;
//   3. dispatch: all-to-all of the pairs' token rows to the experts' ranks;
//   4. each local expert runs once on its rows (grouped_experts_forward);
//   5. combine: the reverse all-to-all brings the outputs home, where they are weighted by the
//      gate and summed per token exactly as routed_experts_forward does.
// Dispatch and combine are autograd nodes whose backward is the reverse all-to-all, so expert
// gradients collect the contributions of every rank's tokens.
//
// Training: each rank's loss is its tokens' share of the global mean (divided by the global
// target count), so the gradients of replicated parameters are *summed* over ranks (bucketed
// all-reduce) and expert gradients need no reduction — EP=N on a batch split N ways equals EP=1
// on the whole batch.
//
// Device-limited routing: with n_group groups of E/n_group experts and EP dividing n_group, each
// group lies on one rank, so a token whose routing keeps topk_group groups reaches at most
// topk_group ranks (ranks_per_token checks it).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "learner/distributed.h"
#include "model/deepseek.h"
#include "model/moe.h"

namespace grpo {

// Rows of x ([sum(send), ...]) all-to-all'd (see Distributed::all_to_all), differentiable: the
// gradient goes back by the reverse all-to-all.
at::Tensor all_to_all_rows(Distributed& dist, const at::Tensor& x, const std::vector<int64_t>& send,
                           const std::vector<int64_t>& recv);

// The routed-experts runner of an expert-sharded model (DeepseekModel::set_routed_experts).
// Not thread-safe: forward() runs collectives on `dist`, one at a time. Keeps a reference to dist (must outlive it).
class ExpertParallel : public RoutedExperts {
 public:
  explicit ExpertParallel(Distributed& dist) : dist_(dist) {}
  at::Tensor forward(const MoeWeights& w, const Routing& routing, const at::Tensor& x) const override;

 private:
  Distributed& dist_;
};

// Distinct ranks each token's experts live on, experts split evenly over `ranks`:
// experts [N, k] int64 -> [N] int64.
at::Tensor ranks_per_token(const at::Tensor& experts, int64_t num_experts, int64_t ranks);

// Whether `name` is a routed expert's tensor (model.layers.L.mlp.experts.E.*): sharded over ranks.
bool is_routed_expert(const std::string& name);

// What rank `rank` of an expert-sharded model writes to its checkpoint shard and publishes to the
// rollout workers: its routed experts and, on rank 0 only, every other tensor (the replicated
// ones, the same on every rank), buffers included. The shards of all ranks are the whole model,
// each tensor in exactly one.
std::map<std::string, at::Tensor> rank_shard(const CausalLM& model, int rank);

// The trainable tensors of an expert-sharded model, by name: replicated ones and this rank's experts.
// Thread-safety: a plain value, no locking (concurrent reads only); the tensors alias the model's parameters.
struct ShardedParameters {
  std::vector<std::pair<std::string, at::Tensor>> replicated, experts;
  std::vector<std::pair<std::string, at::Tensor>> all() const;
};
ShardedParameters sharded_parameters(CausalLM& model);  // a dense model: all replicated

// The model whose routed experts an expert-parallel run shards: `model` as the DeepSeek MoE
// model, InputError naming its model_type for another family.
DeepseekModel& expert_sharded(CausalLM& model);

// Sums the replicated parameters' gradients over ranks (bucketed; an undefined gradient counts as
// zeros and becomes defined on every rank alike).
void all_reduce_gradients(Distributed& dist, const ShardedParameters& p, int64_t bucket_bytes = 32 << 20);

// Global L2 norm of all gradients (replicated counted once, experts of every rank), clipped like
// clip_grad_norm. Call after all_reduce_gradients.
double clip_grad_norm(Distributed& dist, const ShardedParameters& p, double max_norm);

// Sums every layer's [E] expert load over ranks (for the aux-loss-free bias update, which then
// sees the global batch and keeps the replicated biases identical).
void all_reduce_loads(Distributed& dist, std::vector<at::Tensor>& loads);

}  // namespace grpo
