#include "model/linear.h"

#include "model/fp8.h"
#include "model/project.h"

namespace grpo {

Linear quantize_linear(const at::Tensor& w) {
  Fp8Blocks b = quantize_fp8_blocks(w.detach());
  return {b.q, b.scale};
}

at::Tensor dense_weight(const Linear& w, at::ScalarType dtype) {
  if (!w.is_fp8()) return w.weight.scalar_type() == dtype ? w.weight : w.weight.to(dtype);
  at::Tensor out = at::empty(w.weight.sizes(), at::TensorOptions().dtype(dtype));
  dequantize_fp8_blocks_into(w.weight, w.scale_inv, out);
  return out;
}

at::Tensor project(const at::Tensor& x, const Linear& w) {
  if (!w.is_fp8()) return project(x, w.weight);
  // One scratch buffer per thread, grown to the largest weight seen: no allocation per matmul.
  thread_local at::Tensor scratch;
  const int64_t numel = w.weight.numel();
  if (!scratch.defined() || scratch.scalar_type() != x.scalar_type() || scratch.numel() < numel)
    scratch = at::empty({numel}, x.options());
  at::Tensor dense = scratch.narrow(0, 0, numel).view(w.weight.sizes());  // [out, in]
  dequantize_fp8_blocks_into(w.weight, w.scale_inv, dense);
  return at::linear(x, dense);
}

}  // namespace grpo
