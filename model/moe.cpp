#include "model/moe.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <vector>

#include "model/batch_invariant.h"
#include "model/project.h"

namespace grpo {

namespace {

// Without autograd, fp32/bf16 activations go through the kernels (swiglu_rows); otherwise ATen ops.
bool swiglu_kernel_applies(const MlpWeights& w, const at::Tensor& x) {
  if (portable_ops(x) || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16)) return false;
  if (!at::GradMode::is_enabled()) return true;
  return !x.requires_grad() && !w.gate_proj.weight.requires_grad() && !w.up_proj.weight.requires_grad() &&
         !w.down_proj.weight.requires_grad();
}

}  // namespace

// Gate, up and down products by the kernels, silu(v) = v · 1/(1 + e^−v) with std::exp one element
// at a time (the formula of silu_invariant).
void swiglu_rows(const MlpWeights& w, at::ScalarType act, const float* x, int64_t m, float* out) {
  if (m == 0) return;
  const KernelWeight gate = kernel_weight(w.gate_proj, act), up = kernel_weight(w.up_proj, act),
                     down = kernel_weight(w.down_proj, act);
  std::vector<float> g(m * gate.out), u(m * up.out);
  project_rows(gate, x, m, g.data());
  project_rows(up, x, m, u.data());
  float *gp = g.data(), *up_out = u.data();
  at::parallel_for(0, static_cast<int64_t>(g.size()), 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = gp[i];
      gp[i] = v * (1.0f / (1.0f + std::exp(-v))) * up_out[i];
    }
  });
  project_rows(down, g.data(), m, out);
}

at::Tensor mlp_forward(const MlpWeights& w, const at::Tensor& x) {
  if (swiglu_kernel_applies(w, x)) {
    const at::Tensor xf = x.reshape({-1, x.size(-1)}).to(at::kFloat).contiguous();  // [M, D]
    at::Tensor out = at::empty({xf.size(0), w.down_proj.weight.size(0)}, xf.options());
    swiglu_rows(w, x.scalar_type(), xf.data_ptr<float>(), xf.size(0), out.data_ptr<float>());
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out.size(1);
    return out.to(x.scalar_type()).view(shape);
  }
  return project(silu_invariant(project(x, w.gate_proj)) * project(x, w.up_proj), w.down_proj);
}

at::Tensor router_logits(const MoeWeights& w, const at::Tensor& x) {
  at::ScalarType t = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return linear_invariant(x.to(t), w.gate.to(t));
}

at::Tensor grouped_experts_forward(const MoeWeights& w, const at::Tensor& xs, const at::Tensor& counts) {
  const int64_t* count = counts.data_ptr<int64_t>();
  bool kernels = xs.size(0) > 0;
  for (int64_t e = 0; kernels && e < counts.numel(); ++e)
    kernels = count[e] == 0 || swiglu_kernel_applies(w.experts[e], xs);
  if (kernels) {
    // Every expert's rows through swiglu_rows straight into one output, no per-expert tensors.
    const at::Tensor xf = xs.to(at::kFloat).contiguous();  // [M, D]
    at::Tensor out = at::empty_like(xf);                   // [M, D]
    const int64_t d = xf.size(1);
    int64_t start = 0;
    for (int64_t e = 0; e < counts.numel(); ++e) {
      if (count[e] == 0) continue;
      swiglu_rows(w.experts[e], xs.scalar_type(), xf.data_ptr<float>() + start * d, count[e],
                  out.data_ptr<float>() + start * d);
      start += count[e];
    }
    return out.to(xs.scalar_type());
  }
  std::vector<at::Tensor> outs;
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

Routing route_tokens(const MoeWeights& w, const GateSpec& spec, const at::Tensor& xs, const at::Tensor& replay,
                     at::Tensor* own) {
  const at::Tensor logits = router_logits(w, xs);  // [M, E]
  Routing r = moe_gate(logits, w.e_score_correction_bias, spec);
  if (own) *own = r.experts;
  if (!replay.defined()) return r;
  const at::Tensor given = replay.narrow(1, 0, 1).ge(0);  // [M, 1]
  return replay_gate(logits, at::where(given, replay, r.experts), spec);
}

at::Tensor moe_forward(const MoeWeights& w, const GateSpec& spec, const at::Tensor& x, at::Tensor* load,
                       const RoutedExperts* routed, const at::Tensor& tokens, const at::Tensor& replay,
                       at::Tensor* routes, at::Tensor* chosen) {
  const at::Tensor index = tokens.defined() ? at::nonzero(tokens).squeeze(1) : at::Tensor();                // [M]
  const at::Tensor xs = tokens.defined() ? x.index_select(0, index) : x;                                    // [M, D]
  const at::Tensor forced = replay.defined() && tokens.defined() ? replay.index_select(0, index) : replay;  // [M, k]
  at::Tensor own;                                                                                           // [M, k]
  Routing r = route_tokens(w, spec, xs, forced, chosen ? &own : nullptr);
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
