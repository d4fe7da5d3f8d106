// RMSNorm as HF computes it: x / sqrt(mean(x^2) + eps) in at least fp32, cast back to x's
// dtype, then times the weight. x: [..., D], weight: [D] (same dtype as x).
#pragma once
#include <ATen/ATen.h>

namespace grpo {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace grpo
