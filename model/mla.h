// Multi-head Latent Attention (DeepSeek-V2/V3), docs/architecture.md §3.
//
//   q      = q_b_proj(q_a_layernorm(q_a_proj(x)))  (or q_proj(x))   -> per head [nope | rope]
//   kv_a   = kv_a_proj_with_mqa(x) = [latent (kv_lora_rank) | k_rope (rope dim, shared by heads)]
//   c_kv   = kv_a_layernorm(latent)                                  (what the decode cache keeps)
//   kv_b_proj viewed as [H, nope + v, kv_lora_rank]: W_UK = first nope rows, W_UV = last v rows
//
// Two equivalent forms over the keys K = [c_kv | k_rope] [B, S, R + dr] of each row:
//  * naive (training, prefill): k_nope = W_UK c_kv, v = W_UV c_kv per head, then attention;
//  * absorbed (decode over a latent cache): q_lat = q_nope · W_UK (per head, kv_lora_rank wide),
//    scores = [q_lat | q_rope] · K (one batched product for all heads), output = (attn · c_kv) · W_UVᵀ.
// Query (b, t) sees the keys s <= slots[b, t] of its row (causal within the chunk, everything
// cached before it). Scores are scaled by ModelConfig::softmax_scale(); the softmax runs in fp32
// (or fp64).
#pragma once
#include <ATen/ATen.h>

#include "model/latent_context.h"
#include "model/linear.h"
#include "model/model_config.h"

namespace grpo {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct MlaWeights {
  Linear q_proj;              // [H*(nope+rope), D] when q_lora_rank is null
  Linear q_a_proj;            // [Rq, D]
  at::Tensor q_a_layernorm;   // [Rq]
  Linear q_b_proj;            // [H*(nope+rope), Rq]
  Linear kv_a_proj_with_mqa;  // [R + rope, D]
  at::Tensor kv_a_layernorm;  // [R]
  Linear kv_b_proj;           // [H*(nope+v), R]
  Linear o_proj;              // [D, H*v]
};

// Without grad mode (generation, scoring) the absorbed form runs the batch-invariant kernels
// (model/batch_invariant.h): a token's output is the same bit for bit whatever else is in the batch
// and however its sequence was cut into chunks, which is what makes the trainer's log-probs equal
// the rollout engine's. With grad mode both forms use batched ATen products.
enum class AttentionForm {
  kAuto,  // without grad mode absorbed; with it absorbed when the chunk continues earlier keys, else naive
  kNaive,
  kAbsorbed,
};

// kv_b_proj's weight [H*(nope+v), R] as the absorbed-form kernels (kernels/mla_absorb.h) read it:
// contiguous fp32 or bf16 by kernel_weight's rule for activations of `act`; FP8 codes dequantised
// to `act`, as these kernels take no codes.
at::Tensor absorb_weight(const Linear& w, at::ScalarType act);

// x: [B, T, D]; cos/sin: [B, T, rope/2] for the chunk's positions; `chunk` as begin_chunk
// returned it (model/latent_context.h): from ctx->begin(B, T), or without a context slots 0..T-1
// per row (the chunk attends causally to itself), or packed sequences in one row (each attends
// causally to its own tokens: the projections run on the packed row, the query-key products over
// the sequences as padded rows). With a context the chunk's keys are stored at `layer` first.
// Returns [B, T, D].
at::Tensor mla_forward(const MlaWeights& w, const ModelConfig& config, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, const LatentChunk& chunk, LatentContext* ctx = nullptr, int64_t layer = 0,
                       AttentionForm form = AttentionForm::kAuto);

}  // namespace grpo
