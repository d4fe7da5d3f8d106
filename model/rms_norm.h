// RMSNorm as HF computes it: x / sqrt(mean(x^2) + eps) in at least fp32, cast back to x's
// dtype, then times the weight. x: [..., D], weight: [D] (same dtype as x).
// Without grad mode, fp32/bf16 CPU tensors (not the portable path, model/batch_invariant.h) go
// through kernels/rms_norm.h: the same formula with a fixed summation order, so a row's result
// never depends on the rows beside it; otherwise ATen's ops (autograd, fp64, other devices).
#pragma once
#include <ATen/ATen.h>

namespace grpo {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace grpo
