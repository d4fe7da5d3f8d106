// DeepSeekMoE feed-forward (docs/architecture.md §3): routed experts chosen by moe_gate plus always-on shared
// experts; and the dense SwiGLU MLP used by the first `first_k_dense_replace` layers.
//
// Routed experts run grouped by expert: the (token, expert) pairs are sorted by expert, each
// active expert does one gate/up/down matmul on its contiguous slice of tokens, and the
// weighted outputs are summed back per token with one index_add (accumulated in the router's
// dtype, at least fp32, then cast to the activations' dtype).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "model/linear.h"
#include "model/moe_gate.h"

namespace grpo {

// SwiGLU MLP: down(silu(gate x) * up x). gate_proj/up_proj: [I, D], down_proj: [D, I].
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct MlpWeights {
  Linear gate_proj, up_proj, down_proj;
};

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct MoeWeights {
  at::Tensor gate;                     // router [E, D]
  at::Tensor e_score_correction_bias;  // [E] (noaux_tc only; a buffer, not trained by SGD)
  // Routed experts (intermediate moe_intermediate_size): all E, or with expert parallelism this
  // rank's E/EP, experts[i] being expert first_expert + i.
  std::vector<MlpWeights> experts;
  int64_t first_expert = 0;
  MlpWeights shared_experts;  // undefined weights when n_shared_experts == 0
};

// Where the routed experts of a sharded model run: an expert-parallel runner
// (learner/expert_parallel.h) sends each (token, expert) pair to the rank holding the expert and
// returns sum_k weights[n,k] · expert_{experts[n,k]}(x[n]), as routed_experts_forward does locally.
// Thread-safety is the implementation's (ExpertParallel: one forward at a time); the model shares it (shared_ptr).
class RoutedExperts {
 public:
  virtual ~RoutedExperts() = default;
  // x: [N, D] -> [N, D] in x's dtype; routing.experts holds global expert ids.
  virtual at::Tensor forward(const MoeWeights& w, const Routing& routing, const at::Tensor& x) const = 0;
};

// x: [N, D] -> [N, D]
at::Tensor mlp_forward(const MlpWeights& w, const at::Tensor& x);

// SwiGLU on fp32 rows without autograd: down(silu(gate x) · up x) for x [m, D] -> out [m, D] fp32
// (not rounded to `act`), the weights read as kernel_weight(·, act) gives them. mlp_forward's
// no-grad CPU path; a row's result depends on that row only.
void swiglu_rows(const MlpWeights& w, at::ScalarType act, const float* x, int64_t m, float* out);

// Router logits [N, E] in at least fp32 (x and the router weight are upcast before the matmul).
at::Tensor router_logits(const MoeWeights& w, const at::Tensor& x);

// Routed experts only, for a given routing: sum_k weights[n,k] · expert_{experts[n,k]}(x[n]).
// x: [N, D] -> [N, D] in x's dtype. Needs every expert (w.experts.size() == E).
at::Tensor routed_experts_forward(const MoeWeights& w, const Routing& routing, const at::Tensor& x);

// The expert MLPs on rows already grouped by expert: rows [sum(counts[:i]), +counts[i]) go
// through w.experts[i]. xs: [M, D], counts: [E_local] int64 on the CPU -> [M, D] in xs's dtype
// (M = 0: xs itself, so that autograd still reaches xs — expert parallelism relies on it).
at::Tensor grouped_experts_forward(const MoeWeights& w, const at::Tensor& xs, const at::Tensor& counts);

// The router's routing of rows xs [M, D] (router_logits, moe_gate); with `replay` ([M, k],
// undefined: none) the forced experts of the rows whose first id is >= 0, weighed by replay_gate.
// With `own`, also the router's own choice [M, k] (before replay).
Routing route_tokens(const MoeWeights& w, const GateSpec& spec, const at::Tensor& xs, const at::Tensor& replay,
                     at::Tensor* own);

// The whole MoE block: gate, routed experts (here, or through `routed` when given), shared
// experts. x: [N, D] -> [N, D]. With `load`, also the tokens routed to each expert ([E] int64,
// see expert_load). `tokens` ([N] bool, undefined: all): the tokens that go through the gate and
// the routed experts; the others (padding) get the shared experts' output only and no load.
// Routing replay: `replay` ([N, k] int64, undefined: none) forces the experts of each row whose
// first entry is >= 0 (ids < E), weighed by replay_gate; rows of -1 keep the router's choice.
// With `routes`: the experts each token went through, [N, k] int64 (rows outside `tokens`: -1);
// with `chosen`: the same for the router's own choice (before replay).
at::Tensor moe_forward(const MoeWeights& w, const GateSpec& spec, const at::Tensor& x, at::Tensor* load = nullptr,
                       const RoutedExperts* routed = nullptr, const at::Tensor& tokens = {},
                       const at::Tensor& replay = {}, at::Tensor* routes = nullptr, at::Tensor* chosen = nullptr);

}  // namespace grpo
