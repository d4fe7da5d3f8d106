#include "model/rms_norm.h"

#include <ATen/core/grad_mode.h>

#include "kernels/rms_norm.h"
#include "model/batch_invariant.h"

namespace grpo {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::ScalarType in = x.scalar_type();
  const bool kernel = !at::GradMode::is_enabled() && !portable_ops(x) && weight.device().is_cpu() &&
                      (in == at::kFloat || in == at::kBFloat16) && weight.scalar_type() == in && weight.dim() == 1 &&
                      weight.size(0) == x.size(-1);
  if (kernel) {
    const int64_t d = x.size(-1), m = d == 0 ? 0 : x.numel() / d;
    const at::Tensor xf = x.to(at::kFloat).contiguous();       // [M, D] as rows
    const at::Tensor wf = weight.to(at::kFloat).contiguous();  // [D]
    at::Tensor out = at::empty_like(xf);
    kernels::rms_norm_rows(xf.data_ptr<float>(), d, m, d, wf.data_ptr<float>(), static_cast<float>(eps),
                           in == at::kBFloat16, out.data_ptr<float>(), d);
    return out.to(in);
  }
  at::Tensor h = in == at::kDouble ? x : x.to(at::kFloat);                // [..., D]
  at::Tensor inv = at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);  // [..., 1]
  return weight * (h * inv).to(in);
}

}  // namespace grpo
