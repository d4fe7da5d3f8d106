#include "model/rms_norm.h"

namespace grpo {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::ScalarType in = x.scalar_type();
  at::Tensor h = in == at::kDouble ? x : x.to(at::kFloat);                // [..., D]
  at::Tensor inv = at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);  // [..., 1]
  return weight * (h * inv).to(in);
}

}  // namespace grpo
