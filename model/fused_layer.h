// A DeepSeek decoder layer's no-grad CPU forward in one pass over plain fp32 rows: RMSNorms, the
// MLA projections, rope, the absorbed attention over the chunk's keys, the routed and shared
// experts and the residuals, with the same kernels (kernels/) and the same roundings to the
// activations' dtype as the op-by-op path (DeepseekModel::decoder_layer through mla_forward and
// moe_forward), so its result is that path's bit for bit — tests/model_fused_layer_test.cpp
// holds it to that for fp32, bf16 and FP8 weights, with and without a cache, routes and replay.
// What it removes is the framework around the kernels: most of the ATen calls of a layer (views,
// casts, small element-wise ops, allocations), ~30 % of a bf16 decode step at one sequence before
// it (perf). The routing itself still goes through route_tokens (model/moe.h).
//
// Pure functions; thread-safe like the model's const methods (set_fused_layers: set it before
// the model runs).
#pragma once
#include <ATen/ATen.h>

#include "model/deepseek.h"

namespace grpo {

// Process-wide (default on); off sends every forward down the op-by-op path. For tests and benches.
void set_fused_layers(bool on);

// What a layer's forward asks for besides its input, as DeepseekModel::decoder_layer receives it.
struct FusedLayerCall {
  const LatentChunk& chunk;
  LatentContext* context = nullptr;  // null: the chunk attends to itself
  int64_t layer = 0;
  at::Tensor replay;             // [B·T, k] int64 or undefined (MoE layers)
  at::Tensor* load = nullptr;    // out [E] int64, tokens per routed expert (MoE layers)
  at::Tensor* routes = nullptr;  // out [B·T, k] int64 (MoE layers)
  at::Tensor* chosen = nullptr;  // out [B·T, k] int64, the router's own choice (MoE layers)
};

// True when fused_decoder_layer runs this forward: no grad mode, fp32 or bf16 activations on the
// CPU (not the portable path), the absorbed attention (form kAuto or kAbsorbed), no token mask, no
// expert parallelism, no FP8 activations. Rows or packed sequences, with or without a cache.
bool fused_layer_applies(const DecoderLayer& l, const at::Tensor& x, AttentionForm form, bool token_mask,
                         bool expert_parallel);

// x [B, T, D] -> [B, T, D] in x's dtype; cos/sin [B, T, rope/2] (rope_cos_sin). With a context,
// the chunk's keys are stored at call.layer first (LatentContext::store).
at::Tensor fused_decoder_layer(const DecoderLayer& l, const ModelConfig& config, const GateSpec& gate,
                               const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                               const FusedLayerCall& call);

}  // namespace grpo
