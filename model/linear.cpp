#include "model/linear.h"

#include "kernels/linear_dot.h"
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

// W dequantised into a per-thread scratch buffer (the fp64 path) of `dtype`, grown to the largest weight seen:
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
  if (!w.quantize_activations && x.scalar_type() == at::kDouble)
    return linear_invariant(x, dequantized_scratch(w, at::kDouble));
  // The codes read as they are (kernels/linear_dot.h), fp32 products and accumulation: of x itself
  // (weight-only), or of x quantised per 1×128 tile (W8A8).
  const int64_t in = w.weight.size(1), out = w.weight.size(0);
  at::Tensor xf;  // [M, in] fp32
  if (w.quantize_activations) {
    const Fp8Blocks a = quantize_fp8_act_tiles(x.reshape({-1, in}));  // codes [M, in], scales [M, ceil(in/128)]
    xf = dequantize_fp8_act_tiles(a.q, a.scale).contiguous();
  } else {
    xf = x.reshape({-1, in}).to(at::kFloat).contiguous();
  }
  const at::Tensor codes = w.weight.contiguous(), scales = w.scale_inv.to(at::kFloat).contiguous();
  at::Tensor y = at::empty({xf.size(0), out}, xf.options());  // [M, out]
  kernels::linear_dot_fp8(xf.data_ptr<float>(), xf.size(0), in, static_cast<const uint8_t*>(codes.data_ptr()),
                          scales.data_ptr<float>(), out, y.data_ptr<float>());
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  return y.to(x.scalar_type()).view(shape);  // [..., out]
}

KernelWeight kernel_weight(const Linear& w, at::ScalarType act) {
  KernelWeight k;
  k.out = w.weight.size(0), k.in = w.weight.size(1);
  if (w.is_fp8()) {
    k.weight = w.weight.contiguous();
    k.scale_inv = w.scale_inv.to(at::kFloat).contiguous();
    return k;
  }
  const at::ScalarType t = w.weight.scalar_type();
  const bool as_is = t == act || (act == at::kFloat && t == at::kBFloat16);
  k.weight = (as_is ? w.weight : w.weight.to(act)).contiguous();
  return k;
}

void project_rows(const KernelWeight& w, const float* x, int64_t m, float* y) {
  if (w.scale_inv.defined()) {
    kernels::linear_dot_fp8(x, m, w.in, static_cast<const uint8_t*>(w.weight.data_ptr()), w.scale_inv.data_ptr<float>(),
                            w.out, y);
    return;
  }
  const auto type = w.weight.scalar_type() == at::kFloat ? kernels::WeightType::kF32 : kernels::WeightType::kBF16;
  kernels::linear_dot(x, m, w.in, w.weight.data_ptr(), type, w.out, y);
}

}  // namespace grpo
