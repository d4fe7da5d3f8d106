// The two per-head products around MLA's absorbed attention (model/mla.h), for every head and token
// in one call (the decode path and the trainer's scoring both run them):
//   q_lat[n, h, :] = q_nope[n, h, :] · W_UK[h]     W_UK[h] = wkv[h, 0 : nope, :]         [nope, R]
//   o[n, h, :]     = o_lat[n, h, :] · W_UV[h]ᵀ    W_UV[h] = wkv[h, nope : nope + v, :]  [v, R]
// where wkv is kv_b_proj's weight [H·(nope + v), R] viewed [H, nope + v, R], in its stored layout.
//
// Fixed orders (batch-invariant by construction; the AVX2 kernels equal the scalar references bit
// for bit): q_lat is linear_kn's order over nope (kernels/linear_kn.h), o linear_dot's over R
// (kernels/linear_dot.h).
//
// Pure functions; thread-safe; threads through at::parallel_for (results do not depend on them).
#pragma once
#include <cstdint>

#include "kernels/linear_dot.h"

namespace grpo::kernels {

// MLA's dimensions for these products.
struct MlaDims {
  int64_t heads = 0, nope = 0, v = 0, rank = 0;  // H, qk_nope_head_dim, v_head_dim, kv_lora_rank (R)
};

// q: [N, H, q_head] fp32 with q_nope in the first `nope` values of each head (q_head >= nope);
// wkv: [H, nope + v, R] of `wtype`; q_lat: [N, H, R] fp32, overwritten.
void mla_absorb_query(const float* q, int64_t n, int64_t q_head, const MlaDims& d, const void* wkv, WeightType wtype,
                      float* q_lat);
void mla_absorb_query_reference(const float* q, int64_t n, int64_t q_head, const MlaDims& d, const void* wkv,
                                WeightType wtype, float* q_lat);

// o_lat: [N, H, R] fp32; wkv as above; out: [N, H, v] fp32, overwritten.
void mla_value_out(const float* o_lat, int64_t n, const MlaDims& d, const void* wkv, WeightType wtype, float* out);

}  // namespace grpo::kernels
