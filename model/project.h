// y = x · wᵀ with the weight cast to the activations' dtype at the point of use, so fp32 master
// weights drive a bf16 forward and autograd carries the gradient back to the fp32 tensor; each row
// computed as if alone (model/batch_invariant.h).
#pragma once
#include <ATen/ATen.h>

#include "model/batch_invariant.h"

namespace grpo {

// w cast to x's dtype (a no-op when they already agree).
inline at::Tensor like(const at::Tensor& w, const at::Tensor& x) {
  return w.scalar_type() == x.scalar_type() ? w : w.to(x.scalar_type());
}

// x: [..., in], w: [out, in] -> [..., out]
inline at::Tensor project(const at::Tensor& x, const at::Tensor& w) { return linear_invariant(x, like(w, x)); }

// The language-model head: h [..., D] in compute dtype, w [V, D] -> logits [..., V] in fp32 (fp64
// when h is fp64), so log-softmax never runs in bf16.
inline at::Tensor head_logits(const at::Tensor& h, const at::Tensor& w) {
  return project(h, w).to(h.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
}

}  // namespace grpo
