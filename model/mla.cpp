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

// [B, T, H, X] -> [H, B*T, X] and back: heads become the batch of a bmm against per-head weights.
at::Tensor heads_first(const at::Tensor& x) { return x.permute({2, 0, 1, 3}).reshape({x.size(2), -1, x.size(3)}); }
at::Tensor heads_back(const at::Tensor& x, int64_t b, int64_t t) {
  return x.view({x.size(0), b, t, x.size(2)}).permute({1, 2, 0, 3});
}

// Where the queries meet the keys: the chunk's rows as they are, or for packed sequences
// (LatentChunk::packed) those sequences as padded rows [n, L], each query seeing the keys of its
// own sequence. Per-token work stays outside, on the tokens as given (no padding).
struct CoreRows {
  const LatentChunk& chunk;
  bool packed() const { return !chunk.packed.empty(); }
  at::Tensor in(const at::Tensor& x) const { return packed() ? packed_to_rows(x, chunk) : x; }   // [B, T, ...] -> rows
  at::Tensor out(const at::Tensor& y) const { return packed() ? rows_to_packed(y, chunk) : y; }  // rows -> [B, T, ...]
  at::Tensor slots() const {  // [rows, T'] each query's last visible key
    if (!packed()) return chunk.slots;
    const int64_t n = static_cast<int64_t>(chunk.packed.size()), longest = chunk.gather.size(0) / n;
    return at::arange(longest, chunk.gather.options()).unsqueeze(0).expand({n, longest});
  }
};

// The attention of queries (q [B, T, H, nope + rope] as projected, of which the nope part is used,
// and q_rope [B, T, H, rope], its rope part rotated) over keys [B, S, R + rope] (c_kv | rotated
// k_rope) in `form` (not kAuto): [B, T, H, v].
at::Tensor attend(const MlaWeights& w, const ModelConfig& c, const at::Tensor& q, const at::Tensor& q_rope,
                  const at::Tensor& keys, const CoreRows& rows, AttentionForm form) {
  const int64_t b = q.size(0), t = q.size(1), h = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, r = c.kv_lora_rank;
  const at::Tensor q_nope = q.narrow(-1, 0, nope);  // [B, T, H, nope]
  const at::Tensor slots = rows.slots();
  const double scale = c.softmax_scale();
  const at::ScalarType act = q.scalar_type();

  // Without autograd on the CPU: the batch-invariant forms. On the portable path (another device,
  // model/batch_invariant.h) the absorbed form below runs without autograd too.
  const bool invariant = form == AttentionForm::kAbsorbed && !at::GradMode::is_enabled() && !portable_ops(q);
  if (invariant && (act == at::kFloat || act == at::kBFloat16)) {
    // Batch-invariant (model/batch_invariant.h): the per-head products of kernels/mla_absorb.h in
    // fp32 (one rounding to the activations' dtype), the attention over exactly keys 0..slot.
    const at::Tensor wkv = absorb_weight(w.kv_b_proj, act);  // [H*(nope+v), R]
    const kernels::MlaDims dims{h, nope, vd, r};
    const auto wtype = wkv.scalar_type() == at::kFloat ? kernels::WeightType::kF32 : kernels::WeightType::kBF16;
    const at::Tensor qf = q.to(at::kFloat).contiguous();       // [B, T, H, nope+rope]
    at::Tensor q_lat = at::empty({b, t, h, r}, qf.options());  // [B, T, H, R]
    kernels::mla_absorb_query(qf.data_ptr<float>(), b * t, nope + rope, dims, wkv.data_ptr(), wtype,
                              q_lat.data_ptr<float>());
    const at::Tensor query = at::cat({q_lat.to(act), q_rope}, -1);  // [B, T, H, R + rope]
    const at::Tensor o_lat = rows.out(attention_invariant(rows.in(query), rows.in(keys), slots, r, scale))
                                 .to(at::kFloat)
                                 .contiguous();             // [B, T, H, R]
    at::Tensor o = at::empty({b, t, h, vd}, qf.options());  // [B, T, H, v]
    kernels::mla_value_out(o_lat.data_ptr<float>(), b * t, dims, wkv.data_ptr(), wtype, o.data_ptr<float>());
    return o.to(act);
  }
  if (invariant) {
    // fp64: the same products row by row through linear_invariant.
    at::Tensor wkv = dense_weight(w.kv_b_proj, act).view({h, nope + vd, r});  // [H, nope+v, R]
    std::vector<at::Tensor> q_lat(h), o(h);
    for (int64_t i = 0; i < h; ++i)  // q_nope · W_UK per head: [B, T, R]
      q_lat[i] = linear_invariant(q_nope.select(2, i), wkv[i].narrow(0, 0, nope).t());
    const at::Tensor query = at::cat({at::stack(q_lat, 2), q_rope}, -1);  // [B, T, H, R + rope]
    const at::Tensor o_lat =
        rows.out(attention_invariant(rows.in(query), rows.in(keys), slots, r, scale));  // [B, T, H, R]
    for (int64_t i = 0; i < h; ++i)  // o_lat · W_UVᵀ per head: [B, T, v]
      o[i] = linear_invariant(o_lat.select(2, i), wkv[i].narrow(0, nope, vd));
    return at::stack(o, 2);  // [B, T, H, v]
  }
  if (form == AttentionForm::kNaive) {
    // The nope and rope parts in one product: [q_nope | q_rope] · [k_nope | k_pe], the rope key
    // shared by the heads repeated per head.
    const int64_t s = keys.size(1);
    const at::Tensor kv = project(keys.narrow(-1, 0, r), w.kv_b_proj).view({b, s, h, nope + vd});  // [B, S, H, nope+v]
    const at::Tensor k_pe = keys.narrow(-1, r, rope).unsqueeze(2).expand({b, s, h, rope});         // [B, S, H, rope]
    const at::Tensor key = rows.in(at::cat({kv.narrow(-1, 0, nope), k_pe}, -1));  // [B', S', H, nope+rope]
    const at::Tensor v = rows.in(kv.narrow(-1, nope, vd));                        // [B', S', H, v]
    const at::Tensor query = rows.in(at::cat({q_nope, q_rope}, -1));              // [B', T', H, nope+rope]
    at::Tensor scores =
        at::matmul(query.transpose(1, 2), key.permute({0, 2, 3, 1})).transpose(1, 2);      // [B', T', H, S']
    at::Tensor attn = masked_softmax(scores, slots, scale);                                // [B', T', H, S']
    return rows.out(at::matmul(attn.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2));  // [B, T, H, v]
  }
  // Absorbed, with autograd.
  at::Tensor wkv = dense_weight(w.kv_b_proj, act).view({h, nope + vd, r});  // [H, nope+v, R]
  at::Tensor w_uk = wkv.narrow(1, 0, nope);                                 // [H, nope, R]
  at::Tensor w_uv = wkv.narrow(1, nope, vd);                                // [H, v, R]
  at::Tensor q_lat = heads_back(at::bmm(heads_first(q_nope), w_uk), b, t);  // [B, T, H, R]
  const at::Tensor query = rows.in(at::cat({q_lat, q_rope}, -1));           // [B', T', H, R + rope]
  const at::Tensor kr = rows.in(keys);                                      // [B', S', R + rope]
  const int64_t b2 = query.size(0), t2 = query.size(1), s2 = kr.size(1);
  at::Tensor scores = at::bmm(query.reshape({b2, t2 * h, r + rope}), kr.transpose(1, 2)).view({b2, t2, h, s2});
  at::Tensor attn = masked_softmax(scores, slots, scale).view({b2, t2 * h, s2});
  at::Tensor o_lat = rows.out(at::bmm(attn, kr.narrow(-1, 0, r)).view({b2, t2, h, r}));  // [B, T, H, R]
  return heads_back(at::bmm(heads_first(o_lat), w_uv.transpose(1, 2)), b, t);            // [B, T, H, v]
}

}  // namespace

at::Tensor absorb_weight(const Linear& w, at::ScalarType act) {
  return w.is_fp8() ? dense_weight(w, act).contiguous() : kernel_weight(w, act).weight;
}

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
  // Packed sequences (chunk.packed): the query-key part over them as padded rows (CoreRows).
  const at::Tensor out = attend(w, c, q, q_rope, keys, CoreRows{chunk}, form);  // [B, T, H, v]
  return project(out.reshape({b, t, h * vd}), w.o_proj);                        // [B, T, D]
}

}  // namespace grpo
