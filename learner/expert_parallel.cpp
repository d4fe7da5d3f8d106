#include "learner/expert_parallel.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <cmath>

#include "common/error.h"
#include "learner/optim.h"

namespace grpo {
namespace {

namespace ag = torch::autograd;

// The gradient of an all-to-all: the reverse all-to-all of the output gradient.
class AllToAllBackward : public ag::Node {
 public:
  AllToAllBackward(Distributed& dist, std::vector<int64_t> send, std::vector<int64_t> recv, at::Tensor out_like)
      : dist_(dist), send_(std::move(send)), recv_(std::move(recv)), out_like_(std::move(out_like)) {}

  ag::variable_list apply(ag::variable_list&& grads) override {
    // Every rank must take part, also one whose output gradient is undefined (all zeros).
    const at::Tensor g = grads[0].defined() ? grads[0] : at::zeros_like(out_like_);
    return {dist_.all_to_all(g, recv_, send_)};
  }
  std::string name() const override { return "AllToAllBackward"; }

 private:
  Distributed& dist_;
  std::vector<int64_t> send_, recv_;
  at::Tensor out_like_;  // an empty tensor of the output's shape and dtype
};

std::vector<int64_t> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

bool is_routed_expert(const std::string& name) { return name.find(".mlp.experts.") != std::string::npos; }

std::map<std::string, at::Tensor> rank_shard(const CausalLM& model, int rank) {
  std::map<std::string, at::Tensor> mine;
  for (auto& [name, t] : model.state_dict())
    if (rank == 0 || is_routed_expert(name)) mine[name] = t;
  return mine;
}

at::Tensor all_to_all_rows(Distributed& dist, const at::Tensor& x, const std::vector<int64_t>& send,
                           const std::vector<int64_t>& recv) {
  at::Tensor out = dist.all_to_all(x.detach(), send, recv);
  // The node exists whenever autograd records, even where x needs no gradient (a rank that got no
  // rows for its experts): every rank must run the reverse all-to-all in backward.
  if (at::GradMode::is_enabled()) {
    auto node =
        std::shared_ptr<AllToAllBackward>(new AllToAllBackward(dist, send, recv, at::empty_like(out)), ag::deleteNode);
    node->set_next_edges(ag::collect_next_edges(x));
    ag::set_history(out, node);
  }
  return out;
}

at::Tensor ExpertParallel::forward(const MoeWeights& w, const Routing& routing, const at::Tensor& x) const {
  const int64_t n = x.size(0), k = routing.experts.size(1), ep = dist_.size();
  const int64_t num_experts = w.gate.size(0), local = num_experts / ep;
  // 1. (token, expert) pairs in expert order, hence grouped by the rank that owns the expert.
  at::Tensor flat = routing.experts.reshape({-1});                                              // [N*k]
  at::Tensor order = std::get<1>(flat.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));  // [N*k]
  at::Tensor token = order.div(k, "floor");                                                     // [N*k]
  // 2. Counts: sent[r, e] pairs of this rank for expert e of rank r; got[s, e] pairs from rank s.
  at::Tensor sent = flat.bincount({}, num_experts).view({ep, local});              // [EP, E/EP]
  at::Tensor got = dist_.all_to_all_counts(sent.reshape({-1})).view({ep, local});  // [EP, E/EP]
  const std::vector<int64_t> send = to_vector(sent.sum(1)), recv = to_vector(got.sum(1));
  // 3. Dispatch the token rows to the experts' ranks.
  at::Tensor xr = all_to_all_rows(dist_, x.index_select(0, token), send, recv);  // [R, D]
  // 4. Received rows are grouped by source rank, then by expert: regroup by expert and run.
  at::Tensor row_expert = at::arange(local, at::kLong).repeat({ep}).repeat_interleave(got.reshape({-1}));  // [R]
  at::Tensor by_expert = std::get<1>(row_expert.sort(/*stable=*/true, 0, false));                          // [R]
  at::Tensor back = at::empty_like(by_expert).index_put_({by_expert}, at::arange(by_expert.size(0), at::kLong));
  at::Tensor yr = grouped_experts_forward(w, xr.index_select(0, by_expert), got.sum(0)).index_select(0, back);
  // 5. Combine: outputs travel home in the order the pairs left, weighted and summed per token.
  at::Tensor ys = all_to_all_rows(dist_, yr, recv, send);                              // [N*k, D]
  at::Tensor ws = routing.weights.reshape({-1}).index_select(0, order).unsqueeze(1);   // [N*k, 1]
  at::Tensor summed = at::zeros({n, x.size(1)}, x.options().dtype(ws.scalar_type()));  // [N, D]
  return summed.index_add(0, token, ys.to(ws.scalar_type()) * ws).to(x.scalar_type());
}

at::Tensor ranks_per_token(const at::Tensor& experts, int64_t num_experts, int64_t ranks) {
  const int64_t n = experts.size(0);
  at::Tensor rank = experts.div(num_experts / ranks, "floor");  // [N, k]
  return at::zeros({n, ranks}, at::kLong).scatter_(1, rank, 1).sum(1);
}

std::vector<std::pair<std::string, at::Tensor>> ShardedParameters::all() const {
  auto out = replicated;
  out.insert(out.end(), experts.begin(), experts.end());
  return out;
}

ShardedParameters sharded_parameters(CausalLM& model) {
  ShardedParameters p;
  for (auto& [name, t] : model.named_trainable())
    (is_routed_expert(name) ? p.experts : p.replicated).emplace_back(name, t);
  return p;
}

DeepseekModel& expert_sharded(CausalLM& model) {
  auto* moe = dynamic_cast<DeepseekModel*>(&model);
  if (!moe)
    throw InputError("expert parallelism shards the routed experts of a DeepSeek MoE model; model_type '" +
                     model.spec().model_type + "' has none (train it in one process)");
  return *moe;
}

void all_reduce_gradients(Distributed& dist, const ShardedParameters& p, int64_t bucket_bytes) {
  std::vector<at::Tensor> grads;
  for (const auto& [name, t] : p.replicated) {
    if (!t.grad().defined()) t.mutable_grad() = at::zeros_like(t);
    grads.push_back(t.grad());
  }
  dist.all_reduce_sum(grads, bucket_bytes);
}

double clip_grad_norm(Distributed& dist, const ShardedParameters& p, double max_norm) {
  auto tensors = [](const std::vector<std::pair<std::string, at::Tensor>>& named) {
    std::vector<at::Tensor> out;
    out.reserve(named.size());
    for (const auto& [name, t] : named) out.push_back(t);
    return out;
  };
  const std::vector<at::Tensor> replicated = tensors(p.replicated), experts = tensors(p.experts);
  at::Tensor expert_sq = at::tensor({grad_sq_norm(experts)}, at::kDouble);
  dist.all_reduce_sum(expert_sq);
  const double norm = std::sqrt(grad_sq_norm(replicated) + expert_sq.item<double>());
  scale_grads_to(replicated, norm, max_norm);
  scale_grads_to(experts, norm, max_norm);
  return norm;
}

void all_reduce_loads(Distributed& dist, std::vector<at::Tensor>& loads) {
  for (at::Tensor& l : loads)
    if (l.defined()) dist.all_reduce_sum(l);
}

}  // namespace grpo
