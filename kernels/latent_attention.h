// MLA's absorbed attention of one query position over its latent keys, all heads at once
// (model/batch_invariant.h's attention_invariant runs it for every query of a batch):
//   scores[h, j] = scale · q[h] · key_j           key_j = [c_kv_j | k_rope_j], j = 0 .. count−1
//   p[h, :]      = softmax(scores[h, :])
//   out[h, :]    = Σ_j p[h, j] · key_j[0 : value_dim]   (the values are the keys' c_kv part)
// Fixed order: scores in linear_dot's order (kernels/linear_dot.h), then × scale; the row maximum
// m; e_j = exp(s_j − m) (std::exp, one element at a time); their sum in key order; p_j = e_j / sum;
// out in linear_kn's order over j (kernels/linear_kn.h). The keys each query sees are exactly its
// own, so a query's result never depends on the batch around it.
//
// Pure functions; thread-safe; one thread (callers spread queries over threads).
#pragma once
#include <cstdint>

namespace grpo::kernels {

// q: [H, K] fp32; keys: [count, K] fp32 (row stride K); out: [H, value_dim] fp32, overwritten;
// scratch: at least H·count floats. count >= 1, value_dim <= K.
void latent_attention(const float* q, int64_t heads, int64_t k, const float* keys, int64_t count, int64_t value_dim,
                      float scale, float* scratch, float* out);
void latent_attention_reference(const float* q, int64_t heads, int64_t k, const float* keys, int64_t count,
                                int64_t value_dim, float scale, float* scratch, float* out);

}  // namespace grpo::kernels
