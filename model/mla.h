// Multi-head Latent Attention (DeepSeek-V2/V3), DESIGN §3.
//
//   q      = q_b_proj(q_a_layernorm(q_a_proj(x)))  (or q_proj(x))   -> per head [nope | rope]
//   kv_a   = kv_a_proj_with_mqa(x) = [latent (kv_lora_rank) | k_rope (rope dim, shared by heads)]
//   c_kv   = kv_a_layernorm(latent)                                  (what the decode cache keeps)
//   kv_b_proj viewed as [H, nope + v, kv_lora_rank]: W_UK = first nope rows, W_UV = last v rows
//
// Two equivalent forms:
//  * naive (training, prefill): k_nope = W_UK c_kv, v = W_UV c_kv per head, then attention;
//  * absorbed (decode over the latent cache): q_lat = q_nope · W_UK (per head, kv_lora_rank
//    wide), scores = q_lat · c_kv + q_rope · k_rope, output = (attn · c_kv) · W_UVᵀ.
// Scores are scaled by ModelConfig::softmax_scale(); the softmax runs in fp32 (or fp64).
#pragma once
#include <ATen/ATen.h>

#include "model/latent_cache.h"
#include "model/model_config.h"

namespace grpo {

struct MlaWeights {
  at::Tensor q_proj;                             // [H*(nope+rope), D] when q_lora_rank is null
  at::Tensor q_a_proj, q_a_layernorm, q_b_proj;  // [Rq, D], [Rq], [H*(nope+rope), Rq]
  at::Tensor kv_a_proj_with_mqa;                 // [R + rope, D]
  at::Tensor kv_a_layernorm;                     // [R]
  at::Tensor kv_b_proj;                          // [H*(nope+v), R]
  at::Tensor o_proj;                             // [D, H*v]
};

enum class AttentionForm {
  kAuto,      // absorbed when continuing a non-empty cache, naive otherwise
  kNaive,
  kAbsorbed,
};

// x: [B, T, D]; cos/sin: [B, T, rope/2] for the chunk's positions. Without a cache the chunk
// attends causally to itself. With a cache, the chunk's latents are appended to `layer` and the
// chunk attends to every cached position, causally within the chunk. Returns [B, T, D].
at::Tensor mla_forward(const MlaWeights& w, const ModelConfig& config, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, LatentCache* cache = nullptr, int64_t layer = 0,
                       AttentionForm form = AttentionForm::kAuto);

}  // namespace grpo
