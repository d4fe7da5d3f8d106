#include "model/mla.h"

#include <ATen/core/grad_mode.h>

#include <limits>
#include <vector>

#include "kernels/mla_absorb.h"
#include "model/batch_invariant.h"
#include "model/project.h"
#include "model/rms_norm.h"
#include "model/rope.h"

namespace grpo {
namespace {

// Softmax over the keys of scaled scores [B, T, H, S] in at least fp32, back in the activations'
// dtype; key s of row b is hidden from query (b, t) when s > slots[b, t].
at::Tensor masked_softmax(const at::Tensor& scores, const at::Tensor& slots, double scale) {
  const int64_t s = scores.size(-1);
  at::Tensor future = at::arange(s, slots.options()).view({1, 1, s}) > slots.unsqueeze(-1);  // [B, T, S]
  at::ScalarType acc = scores.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor z = (scores * scale).masked_fill(future.unsqueeze(2), -std::numeric_limits<double>::infinity());
  return z.softmax(-1, acc).to(scores.scalar_type());
}

// kv_b_proj's weight as the MLA kernels read it (contiguous fp32 or bf16, kernel_weight's rule for
// activations of `act`); FP8 codes dequantised, as these kernels take no codes.
at::Tensor absorb_weight(const Linear& w, at::ScalarType act) {
  return w.is_fp8() ? dense_weight(w, act).contiguous() : kernel_weight(w, act).weight;
}

// [B, T, H, X] -> [H, B*T, X] and back: heads become the batch of a bmm against per-head weights.
at::Tensor heads_first(const at::Tensor& x) { return x.permute({2, 0, 1, 3}).reshape({x.size(2), -1, x.size(3)}); }
at::Tensor heads_back(const at::Tensor& x, int64_t b, int64_t t) {
  return x.view({x.size(0), b, t, x.size(2)}).permute({1, 2, 0, 3});
}

// The attention of queries (q [B, T, H, nope + rope] as projected, of which the nope part is used,
// and q_rope [B, T, H, rope], its rope part rotated) over keys [B, S, R + rope] (c_kv | rotated
// k_rope), query (b, t) seeing keys s <= slots[b, t], in `form` (not kAuto): [B, T, H, v].
at::Tensor attend(const MlaWeights& w, const ModelConfig& c, const at::Tensor& q, const at::Tensor& q_rope,
                  const at::Tensor& keys, const at::Tensor& slots, AttentionForm form) {
  const int64_t b = q.size(0), t = q.size(1), h = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, r = c.kv_lora_rank;
  const at::Tensor q_nope = q.narrow(-1, 0, nope);  // [B, T, H, nope]
  const int64_t s = keys.size(1);
  const double scale = c.softmax_scale();
  at::Tensor latent = keys.narrow(-1, 0, r), k_pe = keys.narrow(-1, r, rope);  // [B, S, R], [B, S, rope]

  at::Tensor out;  // [B, T, H, v]
  const bool kernel_dtype = q_nope.scalar_type() == at::kFloat || q_nope.scalar_type() == at::kBFloat16;
  if (form == AttentionForm::kAbsorbed && !at::GradMode::is_enabled() && kernel_dtype) {
    // Batch-invariant (model/batch_invariant.h): the per-head products of kernels/mla_absorb.h in
    // fp32 (one rounding to the activations' dtype), the attention over exactly keys 0..slot.
    const at::Tensor wkv = absorb_weight(w.kv_b_proj, q_nope.scalar_type());  // [H*(nope+v), R]
    const kernels::MlaDims dims{h, nope, vd, r};
    const auto wtype = wkv.scalar_type() == at::kFloat ? kernels::WeightType::kF32 : kernels::WeightType::kBF16;
    const at::Tensor qf = q.to(at::kFloat).contiguous();       // [B, T, H, nope+rope]
    at::Tensor q_lat = at::empty({b, t, h, r}, qf.options());  // [B, T, H, R]
    kernels::mla_absorb_query(qf.data_ptr<float>(), b * t, nope + rope, dims, wkv.data_ptr(), wtype,
                              q_lat.data_ptr<float>());
    at::Tensor query = at::cat({q_lat.to(q_nope.scalar_type()), q_rope}, -1);  // [B, T, H, R + rope]
    const at::Tensor o_lat =
        attention_invariant(query, keys, slots, r, scale).to(at::kFloat).contiguous();  // [B, T, H, R]
    at::Tensor o = at::empty({b, t, h, vd}, qf.options());                              // [B, T, H, v]
    kernels::mla_value_out(o_lat.data_ptr<float>(), b * t, dims, wkv.data_ptr(), wtype, o.data_ptr<float>());
    out = o.to(q_nope.scalar_type());
  } else if (form == AttentionForm::kAbsorbed && !at::GradMode::is_enabled()) {
    // fp64: the same products row by row through linear_invariant.
    at::Tensor wkv = dense_weight(w.kv_b_proj, q_nope.scalar_type()).view({h, nope + vd, r});  // [H, nope+v, R]
    std::vector<at::Tensor> q_lat(h), o(h);
    for (int64_t i = 0; i < h; ++i)  // q_nope · W_UK per head: [B, T, R]
      q_lat[i] = linear_invariant(q_nope.select(2, i), wkv[i].narrow(0, 0, nope).t());
    at::Tensor query = at::cat({at::stack(q_lat, 2), q_rope}, -1);         // [B, T, H, R + rope]
    at::Tensor o_lat = attention_invariant(query, keys, slots, r, scale);  // [B, T, H, R]
    for (int64_t i = 0; i < h; ++i)                                        // o_lat · W_UVᵀ per head: [B, T, v]
      o[i] = linear_invariant(o_lat.select(2, i), wkv[i].narrow(0, nope, vd));
    out = at::stack(o, 2);  // [B, T, H, v]
  } else if (form == AttentionForm::kNaive) {
    at::Tensor kv = project(latent, w.kv_b_proj).view({b, s, h, nope + vd});          // [B, S, H, nope+v]
    at::Tensor k_nope = kv.narrow(-1, 0, nope).permute({0, 2, 3, 1});                 // [B, H, nope, S]
    at::Tensor v = kv.narrow(-1, nope, vd).transpose(1, 2);                           // [B, H, S, v]
    at::Tensor scores = at::matmul(q_nope.transpose(1, 2), k_nope).transpose(1, 2) +  // [B, T, H, S]
                        at::bmm(q_rope.reshape({b, t * h, rope}), k_pe.transpose(1, 2)).view({b, t, h, s});
    at::Tensor attn = masked_softmax(scores, slots, scale);     // [B, T, H, S]
    out = at::matmul(attn.transpose(1, 2), v).transpose(1, 2);  // [B, T, H, v]
  } else {
    at::Tensor wkv = dense_weight(w.kv_b_proj, q_nope.scalar_type()).view({h, nope + vd, r});  // [H, nope+v, R]
    at::Tensor w_uk = wkv.narrow(1, 0, nope);                                                  // [H, nope, R]
    at::Tensor w_uv = wkv.narrow(1, nope, vd);                                                 // [H, v, R]
    at::Tensor q_lat = heads_back(at::bmm(heads_first(q_nope), w_uk), b, t);                   // [B, T, H, R]
    at::Tensor query = at::cat({q_lat, q_rope}, -1).reshape({b, t * h, r + rope});             // [B, T*H, R + rope]
    at::Tensor scores = at::bmm(query, keys.transpose(1, 2)).view({b, t, h, s});               // [B, T, H, S]
    at::Tensor attn = masked_softmax(scores, slots, scale).view({b, t * h, s});
    at::Tensor o_lat = at::bmm(attn, latent).view({b, t, h, r});                // [B, T, H, R]
    out = heads_back(at::bmm(heads_first(o_lat), w_uv.transpose(1, 2)), b, t);  // [B, T, H, v]
  }
  return out;
}

}  // namespace

at::Tensor mla_forward(const MlaWeights& w, const ModelConfig& c, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, const LatentChunk& chunk, LatentContext* ctx, int64_t layer,
                       AttentionForm form) {
  const int64_t b = x.size(0), t = x.size(1), h = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, r = c.kv_lora_rank;

  at::Tensor q = c.q_lora_rank
                     ? project(rms_norm(project(x, w.q_a_proj), like(w.q_a_layernorm, x), c.rms_norm_eps), w.q_b_proj)
                     : project(x, w.q_proj);  // [B, T, H*(nope+rope)]
  q = q.view({b, t, h, nope + rope});
  at::Tensor q_rope = apply_rope(q.narrow(-1, nope, rope), cos.unsqueeze(2), sin.unsqueeze(2),
                                 c.rope_interleave);  // [B, T, H, rope]

  at::Tensor kv_a = project(x, w.kv_a_proj_with_mqa);                                            // [B, T, R + rope]
  at::Tensor c_kv = rms_norm(kv_a.narrow(-1, 0, r), like(w.kv_a_layernorm, x), c.rms_norm_eps);  // [B, T, R]
  at::Tensor k_rope = apply_rope(kv_a.narrow(-1, r, rope), cos, sin, c.rope_interleave);         // [B, T, rope]
  at::Tensor keys = at::cat({c_kv, k_rope}, -1);                                                 // [B, T, R + rope]
  if (ctx) keys = ctx->store(layer, keys);                                                       // [B, S, R + rope]
  if (form == AttentionForm::kAuto)
    form = chunk.continues || !at::GradMode::is_enabled() ? AttentionForm::kAbsorbed : AttentionForm::kNaive;
  at::Tensor out;  // [B, T, H, v]
  if (chunk.packed.empty()) {
    out = attend(w, c, q, q_rope, keys, chunk.slots, form);
  } else {  // packed sequences: attention over them as padded rows, each seeing its own keys
    const int64_t longest = chunk.gather.size(0) / static_cast<int64_t>(chunk.packed.size());
    const at::Tensor slots =
        at::arange(longest, at::kLong).unsqueeze(0).expand({int64_t(chunk.packed.size()), longest});
    out = rows_to_packed(
        attend(w, c, packed_to_rows(q, chunk), packed_to_rows(q_rope, chunk), packed_to_rows(keys, chunk), slots, form),
        chunk);  // [1, T, H, v]
  }
  return project(out.reshape({b, t, h * vd}), w.o_proj);  // [B, T, D]
}

}  // namespace grpo
