// RMSNorm of fp32 rows with a fixed summation order (the no-grad forward's norm: rollout decode,
// prefill, the trainer's scoring; model/rms_norm.h):
//   ss  = Σ x_i² in 8 lanes: s[i mod 8] += x_i·x_i (product rounded, then the sum) for i < D8
//         (D8 = D − D mod 8), the lanes summed as ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)),
//         then the tail i = D8 .. D−1 added in order
//   inv = 1 / sqrt(ss / D + eps)
//   out_i = act(w_i · act(x_i · inv))
// in fp32, where act() rounds to the activations' dtype (bf16: round to nearest even; fp32: none),
// the two roundings HF's RMSNorm makes in bf16 (normalise in fp32, cast, times the weight in bf16).
// A row's result depends on that row only (batch-invariant by construction).
//
// Pure function; thread-safe; one thread (rows are short: callers run them where they are).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace grpo::kernels {

// x: [M, D] fp32 (row stride ldx >= D); weight: [D] fp32 (a bf16 weight widened, exact);
// out: [M, D] fp32 (row stride ldo >= D), overwritten; may alias x when ldo == ldx.
// round_bf16: the activations are bf16 (act() above rounds to bf16).
void rms_norm_rows(const float* x, int64_t ldx, int64_t m, int64_t d, const float* weight, float eps, bool round_bf16,
                   float* out, int64_t ldo);

}  // namespace grpo::kernels
