#include "model/moe.h"

#include "model/batch_invariant.h"
#include "model/project.h"

namespace grpo {

at::Tensor mlp_forward(const MlpWeights& w, const at::Tensor& x) {
  return project(silu_invariant(project(x, w.gate_proj)) * project(x, w.up_proj), w.down_proj);
}

at::Tensor router_logits(const MoeWeights& w, const at::Tensor& x) {
  at::ScalarType t = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return linear_invariant(x.to(t), w.gate.to(t));
}

at::Tensor grouped_experts_forward(const MoeWeights& w, const at::Tensor& xs, const at::Tensor& counts) {
  std::vector<at::Tensor> outs;
  const int64_t* count = counts.data_ptr<int64_t>();
  int64_t start = 0;
  for (int64_t e = 0; e < counts.numel(); ++e) {
    if (count[e] == 0) continue;
    outs.push_back(mlp_forward(w.experts[e], xs.narrow(0, start, count[e])));  // [n_e, D]
    start += count[e];
  }
  return outs.empty() ? xs : at::cat(outs, 0);  // no rows: xs itself ([0, D]), still in xs's autograd graph
}

at::Tensor routed_experts_forward(const MoeWeights& w, const Routing& routing, const at::Tensor& x) {
  int64_t n = x.size(0), k = routing.experts.size(1);
  int64_t num_experts = static_cast<int64_t>(w.experts.size());
  at::Tensor flat = routing.experts.reshape({-1});                                              // [N*k]
  at::Tensor order = std::get<1>(flat.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));  // [N*k]
  at::Tensor token = order.div(k, "floor");                                                     // [N*k]
  at::Tensor counts = flat.bincount({}, num_experts).to(at::kCPU);                              // [E]
  at::Tensor xs = x.index_select(0, token);                                                     // [N*k, D]
  at::Tensor ws = routing.weights.reshape({-1}).index_select(0, order).unsqueeze(1);            // [N*k, 1]
  at::Tensor ys = grouped_experts_forward(w, xs, counts).to(ws.scalar_type()) * ws;             // [N*k, D]
  at::Tensor summed = at::zeros({n, x.size(1)}, x.options().dtype(ws.scalar_type()));           // [N, D]
  return summed.index_add(0, token, ys).to(x.scalar_type());
}

namespace {

// The router's choice, or the replayed experts of the rows that have them (moe_forward); with
// `own`, also the router's choice ([M, k]). xs: [M, D]; replay: [M, k] or undefined.
Routing route(const MoeWeights& w, const GateSpec& spec, const at::Tensor& xs, const at::Tensor& replay,
              at::Tensor* own) {
  const at::Tensor logits = router_logits(w, xs);  // [M, E]
  Routing r = moe_gate(logits, w.e_score_correction_bias, spec);
  if (own) *own = r.experts;
  if (!replay.defined()) return r;
  const at::Tensor given = replay.narrow(1, 0, 1).ge(0);  // [M, 1]
  return replay_gate(logits, at::where(given, replay, r.experts), spec);
}

}  // namespace

at::Tensor moe_forward(const MoeWeights& w, const GateSpec& spec, const at::Tensor& x, at::Tensor* load,
                       const RoutedExperts* routed, const at::Tensor& tokens, const at::Tensor& replay,
                       at::Tensor* routes, at::Tensor* chosen) {
  const at::Tensor index = tokens.defined() ? at::nonzero(tokens).squeeze(1) : at::Tensor();                // [M]
  const at::Tensor xs = tokens.defined() ? x.index_select(0, index) : x;                                    // [M, D]
  const at::Tensor forced = replay.defined() && tokens.defined() ? replay.index_select(0, index) : replay;  // [M, k]
  at::Tensor own;                                                                                           // [M, k]
  Routing r = route(w, spec, xs, forced, chosen ? &own : nullptr);
  if (load) *load = expert_load(r, w.gate.size(0));
  auto all_rows = [&](const at::Tensor& e) {  // [M, k] -> [N, k], -1 outside `tokens`
    return tokens.defined() ? at::full({x.size(0), spec.top_k}, -1, e.options()).index_copy(0, index, e) : e;
  };
  if (routes) *routes = all_rows(r.experts);
  if (chosen) *chosen = all_rows(own);
  at::Tensor out = routed ? routed->forward(w, r, xs) : routed_experts_forward(w, r, xs);  // [M, D]
  if (tokens.defined()) out = at::zeros_like(x).index_copy(0, index, out);                 // [N, D]
  if (w.shared_experts.gate_proj.weight.defined()) out = out + mlp_forward(w.shared_experts, x);
  return out;
}

}  // namespace grpo
