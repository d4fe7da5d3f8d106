#include "model/mla.h"

#include <limits>

#include "model/project.h"
#include "model/rms_norm.h"
#include "model/rope.h"

namespace grpo {
namespace {

// Softmax over keys of masked, scaled scores [B, H, T, S] in at least fp32, back in the
// activations' dtype. Query t (cache slot offset + t) sees keys s <= offset + t.
at::Tensor causal_softmax(const at::Tensor& scores, int64_t offset, double scale) {
  int64_t t = scores.size(2), s = scores.size(3);
  auto iopts = at::TensorOptions().dtype(at::kLong);
  at::Tensor future = at::arange(s, iopts).unsqueeze(0) > (at::arange(t, iopts) + offset).unsqueeze(1);  // [T, S]
  at::ScalarType acc = scores.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor z = (scores * scale).masked_fill(future, -std::numeric_limits<double>::infinity());
  return z.softmax(-1, acc).to(scores.scalar_type());
}

}  // namespace

at::Tensor mla_forward(const MlaWeights& w, const ModelConfig& c, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, LatentCache* cache, int64_t layer, AttentionForm form) {
  const int64_t b = x.size(0), t = x.size(1), h = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, r = c.kv_lora_rank;

  at::Tensor q = c.q_lora_rank ? project(rms_norm(project(x, w.q_a_proj), like(w.q_a_layernorm, x), c.rms_norm_eps),
                                        w.q_b_proj)
                               : project(x, w.q_proj);                  // [B, T, H*(nope+rope)]
  q = q.view({b, t, h, nope + rope}).transpose(1, 2);                  // [B, H, T, nope+rope]
  at::Tensor q_nope = q.narrow(-1, 0, nope);                           // [B, H, T, nope]
  at::Tensor q_rope = apply_rope(q.narrow(-1, nope, rope), cos.unsqueeze(1), sin.unsqueeze(1),
                                 c.rope_interleave);                   // [B, H, T, rope]

  at::Tensor kv_a = project(x, w.kv_a_proj_with_mqa);                   // [B, T, R + rope]
  at::Tensor c_kv = rms_norm(kv_a.narrow(-1, 0, r), like(w.kv_a_layernorm, x), c.rms_norm_eps);  // [B, T, R]
  at::Tensor k_rope = apply_rope(kv_a.narrow(-1, r, rope), cos, sin, c.rope_interleave);        // [B, T, rope]

  int64_t offset = 0;
  if (cache) {
    offset = cache->length();
    std::tie(c_kv, k_rope) = cache->append(layer, c_kv, k_rope);  // [B, S, R], [B, S, rope]
  }
  if (form == AttentionForm::kAuto) form = offset > 0 ? AttentionForm::kAbsorbed : AttentionForm::kNaive;
  const int64_t s = c_kv.size(1);
  const double scale = c.softmax_scale();
  at::Tensor rope_scores = at::matmul(q_rope, k_rope.unsqueeze(1).transpose(-1, -2));  // [B, H, T, S]

  at::Tensor out;  // [B, H, T, v]
  if (form == AttentionForm::kNaive) {
    at::Tensor kv = project(c_kv, w.kv_b_proj).view({b, s, h, nope + vd}).transpose(1, 2);  // [B, H, S, nope+v]
    at::Tensor k_nope = kv.narrow(-1, 0, nope), v = kv.narrow(-1, nope, vd);
    at::Tensor attn = causal_softmax(at::matmul(q_nope, k_nope.transpose(-1, -2)) + rope_scores, offset, scale);
    out = at::matmul(attn, v);
  } else {
    at::Tensor wkv = like(w.kv_b_proj, x).view({h, nope + vd, r});  // [H, nope+v, R]
    at::Tensor w_uk = wkv.narrow(1, 0, nope);                        // [H, nope, R]
    at::Tensor w_uv = wkv.narrow(1, nope, vd);                       // [H, v, R]
    at::Tensor q_lat = at::matmul(q_nope, w_uk);                     // [B, H, T, R]
    at::Tensor lat = c_kv.unsqueeze(1);                              // [B, 1, S, R]
    at::Tensor attn = causal_softmax(at::matmul(q_lat, lat.transpose(-1, -2)) + rope_scores, offset, scale);
    out = at::matmul(at::matmul(attn, lat), w_uv.transpose(-1, -2));  // [B, H, T, R] -> [B, H, T, v]
  }
  return project(out.transpose(1, 2).reshape({b, t, h * vd}), w.o_proj);  // [B, T, D]
}

}  // namespace grpo
