// Rotary position embedding of MLA's decoupled rope dims (qk_rope_head_dim = d), default or YaRN
// (docs/architecture.md §3). Pure functions; the tables are built per call from the positions.
//
// Layout: with `interleaved` (DeepSeek's own layout, HF rope_interleave=true) the pairs rotated
// together are the adjacent dims (2i, 2i+1); otherwise they are (i, i + d/2). Either way the
// result is returned in the half-split layout [x1' | x2'] that HF returns, so q·k is the same.
#pragma once
#include <ATen/ATen.h>

#include <utility>

#include "model/model_config.h"

namespace grpo {

// Inverse frequencies [d/2] (float64). YaRN blends interpolated (1/(factor·base^(2i/d))) and
// extrapolated (1/base^(2i/d)) frequencies with a linear ramp between the dims whose wavelengths
// make beta_fast and beta_slow rotations over original_max_position_embeddings.
at::Tensor rope_inv_freq(const RopeConfig& rope, int64_t dim);

// The factor cos and sin are multiplied by: 1 for default rope; for YaRN the explicit
// attention_factor, else mscale(factor, mscale)/mscale(factor, mscale_all_dim) when both are
// given, else mscale(factor, 1), with mscale(s, m) = 0.1·m·ln(s) + 1 (1 when s <= 1).
double rope_attention_factor(const RopeConfig& rope);

// cos and sin of positions × inv_freq, times the attention factor, in `dtype`.
// positions: [...] int64 -> each [..., d/2]. inv_freq: rope_inv_freq(config.rope,
// qk_rope_head_dim) when the caller keeps it (a model computes it once); undefined: computed here.
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const ModelConfig& config, const at::Tensor& positions,
                                               at::ScalarType dtype, const at::Tensor& inv_freq = {});

// Rotates x [..., d] by cos/sin (broadcastable to [..., d/2]); returns [..., d], half-split layout.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved);

}  // namespace grpo
