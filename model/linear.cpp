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

namespace {

// W dequantised into a per-thread scratch buffer of `dtype`, grown to the largest weight seen:
// no allocation per matmul. Valid until the next call on this thread.
at::Tensor dequantized_scratch(const Linear& w, at::ScalarType dtype) {
  thread_local at::Tensor scratch;
  const int64_t numel = w.weight.numel();
  if (!scratch.defined() || scratch.scalar_type() != dtype || scratch.numel() < numel)
    scratch = at::empty({numel}, at::TensorOptions().dtype(dtype));
  at::Tensor dense = scratch.narrow(0, 0, numel).view(w.weight.sizes());  // [out, in]
  dequantize_fp8_blocks_into(w.weight, w.scale_inv, dense);
  return dense;
}

}  // namespace

at::Tensor project(const at::Tensor& x, const Linear& w) {
  if (!w.is_fp8()) return project(x, w.weight);
  if (!w.quantize_activations) return linear_invariant(x, dequantized_scratch(w, x.scalar_type()));
  // W8A8: activations quantised per 1×128 tile, both operands dequantised, fp32 product.
  const int64_t in = w.weight.size(1), out = w.weight.size(0);
  const Fp8Blocks a = quantize_fp8_act_tiles(x.reshape({-1, in}));          // codes [M, in], scales [M, ceil(in/128)]
  const at::Tensor xq = dequantize_fp8_act_tiles(a.q, a.scale);             // [M, in] fp32
  at::Tensor y = linear_invariant(xq, dequantized_scratch(w, at::kFloat));  // [M, out] fp32
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  return y.view(shape).to(x.scalar_type());  // [..., out]
}

}  // namespace grpo
