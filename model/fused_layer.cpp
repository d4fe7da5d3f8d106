#include "model/fused_layer.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <atomic>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/bf16.h"
#include "kernels/latent_attention.h"
#include "kernels/mla_absorb.h"
#include "kernels/rms_norm.h"
#include "model/batch_invariant.h"
#include "model/linear.h"
#include "model/mla.h"
#include "model/moe.h"

namespace grpo {
namespace {

std::atomic<bool> g_fused{true};

// Rounding to the activations' dtype: what every `.to(act)` of the op-by-op path does.
struct Act {
  at::ScalarType type;
  bool bf16() const { return type == at::kBFloat16; }
  float operator()(float v) const { return bf16() ? kernels::round_to_bf16(v) : v; }
  void all(float* p, int64_t n) const {
    if (bf16())
      for (int64_t i = 0; i < n; ++i) p[i] = kernels::round_to_bf16(p[i]);
  }
};

// A contiguous fp32 or bf16 CPU tensor's values as fp32, rounded by `a` (like(t, x) then widened;
// widening is exact): the tensor's own memory when it is fp32 and `a` keeps fp32, else a copy.
// Plain loops, no ATen call (a decode step makes hundreds of these).
struct Floats {
  const float* p = nullptr;
  std::vector<float> own;
};
Floats floats_of(const at::Tensor& t, const Act& a) {
  Floats f;
  const at::Tensor c = t.is_contiguous() ? t : t.contiguous();
  const int64_t n = c.numel();
  if (c.scalar_type() == at::kFloat && !a.bf16()) {
    if (c.data_ptr() == t.data_ptr()) {
      f.p = t.data_ptr<float>();
      return f;
    }
    f.own.assign(c.data_ptr<float>(), c.data_ptr<float>() + n);
  } else if (c.scalar_type() == at::kFloat) {
    const float* src = c.data_ptr<float>();
    f.own.resize(n);
    for (int64_t i = 0; i < n; ++i) f.own[i] = a(src[i]);
  } else {
    TORCH_CHECK(c.scalar_type() == at::kBFloat16, "fused layer: fp32 or bf16 tensors, got ", c.scalar_type());
    const c10::BFloat16* src = c.data_ptr<c10::BFloat16>();
    f.own.resize(n);
    for (int64_t i = 0; i < n; ++i) f.own[i] = static_cast<float>(src[i]);  // a bf16 value: act() keeps it
  }
  f.p = f.own.data();
  return f;
}

// A new tensor of `shape` in a's dtype holding v (values already rounded by `a`: exact).
at::Tensor tensor_of(const std::vector<float>& v, at::IntArrayRef shape, const Act& a) {
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(a.type));
  if (a.bf16()) {
    c10::BFloat16* dst = out.data_ptr<c10::BFloat16>();
    for (size_t i = 0; i < v.size(); ++i) dst[i] = c10::BFloat16(v[i]);
  } else {
    std::copy(v.begin(), v.end(), out.data_ptr<float>());
  }
  return out;
}

// y [m, out] = act(x [m, in] · Wᵀ): project() without autograd.
void linear_rows(const Linear& w, const Act& a, const float* x, int64_t m, std::vector<float>& y) {
  const KernelWeight k = kernel_weight(w, a.type);
  y.resize(m * k.out);
  project_rows(k, x, m, y.data());
  a.all(y.data(), static_cast<int64_t>(y.size()));
}

// rms_norm(x, like(weight, x), eps) on rows of `d` values (strides ldx, ldo).
void norm_rows(const at::Tensor& weight, const Act& a, float eps, const float* x, int64_t ldx, int64_t m, int64_t d,
               float* out, int64_t ldo) {
  const Floats w = floats_of(weight, a);  // [d] the activations' values
  kernels::rms_norm_rows(x, ldx, m, d, w.p, eps, a.bf16(), out, ldo);
}

// apply_rope of one vector in [d] with its position's c, s [d/2]: out [d] = [x1·c − x2·s | x2·c + x1·s]
// (x1, x2 the pairs' members: even/odd elements when interleaved, else the halves), act() after
// every product and sum as the op-by-op path rounds them. in and out must not overlap.
void rope_vector(const float* in, const float* c, const float* s, int64_t d, bool interleaved, const Act& a,
                 float* out) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float x1 = interleaved ? in[2 * i] : in[i];
    const float x2 = interleaved ? in[2 * i + 1] : in[half + i];
    out[i] = a(a(x1 * c[i]) - a(x2 * s[i]));
    out[half + i] = a(a(x2 * c[i]) + a(x1 * s[i]));
  }
}

kernels::WeightType weight_type(const at::Tensor& w) {
  return w.scalar_type() == at::kFloat ? kernels::WeightType::kF32 : kernels::WeightType::kBF16;
}

// The routed experts (ascending expert id: each token's contributions are summed in that order,
// from 0, as index_add does in routed_experts_forward) plus the shared experts: ffn [m, D], act()ed.
void moe_rows(const MoeWeights& w, const GateSpec& gate, const Act& a, const float* y, int64_t m, int64_t d,
              const FusedLayerCall& call, std::vector<float>& ffn) {
  at::Tensor own;
  const at::Tensor ys = at::from_blob(const_cast<float*>(y), {m, d}, at::TensorOptions().dtype(at::kFloat));
  const Routing r = route_tokens(w, gate, ys, call.replay, call.chosen ? &own : nullptr);
  if (call.load) *call.load = expert_load(r, w.gate.size(0));
  if (call.routes) *call.routes = r.experts;
  if (call.chosen) *call.chosen = own;
  const at::Tensor ids_t = r.experts.contiguous();  // [m, k]
  const at::Tensor wts_t = r.weights.scalar_type() == at::kFloat && r.weights.is_contiguous()
                               ? r.weights
                               : r.weights.to(at::kFloat).contiguous();
  const int64_t k = ids_t.size(1);
  const int64_t* ids = ids_t.data_ptr<int64_t>();
  const float* wts = wts_t.data_ptr<float>();
  std::vector<float> acc(m * d, 0.0f), xs, out;
  std::vector<int64_t> pairs;  // (token · k + slot) routed to the expert at hand, in token order
  for (int64_t e = 0; e < static_cast<int64_t>(w.experts.size()); ++e) {
    pairs.clear();
    for (int64_t i = 0; i < m * k; ++i)
      if (ids[i] == e) pairs.push_back(i);
    if (pairs.empty()) continue;
    const int64_t n = static_cast<int64_t>(pairs.size());
    xs.resize(n * d);
    out.resize(n * d);
    for (int64_t p = 0; p < n; ++p) std::copy_n(y + (pairs[p] / k) * d, d, xs.data() + p * d);
    swiglu_rows(w.experts[e], a.type, xs.data(), n, out.data());
    for (int64_t p = 0; p < n; ++p) {
      float* dst = acc.data() + (pairs[p] / k) * d;
      const float* src = out.data() + p * d;
      const float weight = wts[pairs[p]];
      for (int64_t j = 0; j < d; ++j) {
        const float contribution = a(src[j]) * weight;
        dst[j] = dst[j] + contribution;
      }
    }
  }
  ffn.resize(m * d);
  for (int64_t i = 0; i < m * d; ++i) ffn[i] = a(acc[i]);
  if (!w.shared_experts.gate_proj.weight.defined()) return;
  out.resize(m * d);
  swiglu_rows(w.shared_experts, a.type, y, m, out.data());
  for (int64_t i = 0; i < m * d; ++i) ffn[i] = a(ffn[i] + a(out[i]));
}

}  // namespace

void set_fused_layers(bool on) { g_fused = on; }

bool fused_layer_applies(const DecoderLayer& l, const at::Tensor& x, AttentionForm form, bool token_mask,
                         bool expert_parallel) {
  if (!g_fused || at::GradMode::is_enabled() || portable_ops(x) || form == AttentionForm::kNaive) return false;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16) return false;
  if (token_mask || expert_parallel) return false;
  const MlaWeights& a = l.self_attn;
  return !a.kv_a_proj_with_mqa.quantize_activations && a.kv_a_proj_with_mqa.weight.device().is_cpu();
}

at::Tensor fused_decoder_layer(const DecoderLayer& l, const ModelConfig& c, const GateSpec& gate, const at::Tensor& x,
                               const at::Tensor& cos, const at::Tensor& sin, const FusedLayerCall& call) {
  const Act a{x.scalar_type()};
  const int64_t b = x.size(0), t = x.size(1), m = b * t, d = c.hidden_size, h = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, r = c.kv_lora_rank;
  const int64_t qk = nope + rope, kw = r + rope, half = rope / 2;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const MlaWeights& w = l.self_attn;
  const Floats xv = floats_of(x, a), cv = floats_of(cos, a), sv = floats_of(sin, a);  // [M, D], [M, rope/2] × 2
  const float *xf = xv.p, *cp = cv.p, *sp = sv.p;

  // Queries [M, H, nope + rope] and the chunk's keys [M, R + rope] (c_kv | rotated k_rope).
  std::vector<float> an(m * d), q, kv;
  norm_rows(l.input_layernorm, a, eps, xf, d, m, d, an.data(), d);
  if (c.q_lora_rank) {
    const int64_t rq = *c.q_lora_rank;
    std::vector<float> qa;
    linear_rows(w.q_a_proj, a, an.data(), m, qa);
    norm_rows(w.q_a_layernorm, a, eps, qa.data(), rq, m, rq, qa.data(), rq);
    linear_rows(w.q_b_proj, a, qa.data(), m, q);
  } else {
    linear_rows(w.q_proj, a, an.data(), m, q);
  }
  linear_rows(w.kv_a_proj_with_mqa, a, an.data(), m, kv);
  std::vector<float> fresh(m * kw);  // [M, R + rope]
  float* kn = fresh.data();
  norm_rows(w.kv_a_layernorm, a, eps, kv.data(), kw, m, r, kn, kw);
  for (int64_t i = 0; i < m; ++i)
    rope_vector(kv.data() + i * kw + r, cp + i * half, sp + i * half, rope, c.rope_interleave, a, kn + i * kw + r);
  at::Tensor keys = tensor_of(fresh, {b, t, kw}, a);
  if (call.context) keys = call.context->store(call.layer, keys);  // [B, S, R + rope]
  const Floats kv_all = floats_of(keys, a);
  const int64_t s = keys.size(1);

  // The absorbed attention: query [M, H, R + rope] = [act(q_nope · W_UK) | rope(q_rope)].
  const at::Tensor wkv = absorb_weight(w.kv_b_proj, a.type);  // [H*(nope+v), R]
  const kernels::MlaDims dims{h, nope, vd, r};
  std::vector<float> q_lat(m * h * r), query(m * h * kw);
  kernels::mla_absorb_query(q.data(), m, qk, dims, wkv.data_ptr(), weight_type(wkv), q_lat.data());
  for (int64_t i = 0; i < m * h; ++i) {
    float* qi = query.data() + i * kw;
    for (int64_t j = 0; j < r; ++j) qi[j] = a(q_lat[i * r + j]);
    const int64_t tok = i / h;
    rope_vector(q.data() + i * qk + nope, cp + tok * half, sp + tok * half, rope, c.rope_interleave, a, qi + r);
  }
  const at::Tensor& slots_in = call.chunk.slots;
  const at::Tensor slots_t =
      slots_in.scalar_type() == at::kLong && slots_in.is_contiguous() ? slots_in : slots_in.to(at::kLong).contiguous();
  const int64_t* slot = slots_t.data_ptr<int64_t>();
  // Query i sees keys first[i] .. first[i] + slot[i] of its row: from 0, or in packed sequences
  // (one row, slots restarting at each sequence) from its own sequence's first token.
  const bool packed = !call.chunk.packed.empty();
  std::vector<int64_t> first(m, 0);
  for (int64_t i = 0; i < m; ++i) {
    if (packed) first[i] = i % t - slot[i];
    if (slot[i] < 0 || first[i] < 0 || first[i] + slot[i] >= s)
      throw InputError("attention: query slot " + std::to_string(slot[i]) + " outside the " + std::to_string(s) +
                       " keys of its row");
  }
  std::vector<float> o_lat(m * h * r, 0.0f);
  const float scale = static_cast<float>(c.softmax_scale());
  const float* kp = kv_all.p;
  at::parallel_for(0, m, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t count = slot[i] + 1;
      scratch.resize(h * count);
      kernels::latent_attention(query.data() + i * h * kw, h, kw, kp + ((i / t) * s + first[i]) * kw, count, r, scale,
                                scratch.data(), o_lat.data() + i * h * r);
    }
  });
  a.all(o_lat.data(), m * h * r);
  std::vector<float> o(m * h * vd), attn;
  kernels::mla_value_out(o_lat.data(), m, dims, wkv.data_ptr(), weight_type(wkv), o.data());
  a.all(o.data(), m * h * vd);
  linear_rows(w.o_proj, a, o.data(), m, attn);  // [M, D]

  // Residual, norm, feed-forward, residual.
  std::vector<float> hid(m * d), y(m * d), ffn;
  for (int64_t i = 0; i < m * d; ++i) hid[i] = a(xf[i] + attn[i]);
  norm_rows(l.post_attention_layernorm, a, eps, hid.data(), d, m, d, y.data(), d);
  if (l.is_moe) {
    moe_rows(l.moe, gate, a, y.data(), m, d, call, ffn);
  } else {
    ffn.resize(m * d);
    swiglu_rows(l.mlp, a.type, y.data(), m, ffn.data());
    a.all(ffn.data(), m * d);
  }
  for (int64_t i = 0; i < m * d; ++i) hid[i] = a(hid[i] + ffn[i]);
  return tensor_of(hid, {b, t, d}, a);
}

}  // namespace grpo
