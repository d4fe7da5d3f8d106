// The weight of a linear map y = x · Wᵀ (W: [out, in]) and the one place it is applied.
//
// Dense: `weight` holds W in any float dtype, cast to the activations' dtype where it is used, so
// fp32 master weights drive a bf16 forward and autograd reaches the fp32 tensor.
// FP8 (inference only): `weight` holds e4m3 codes (float8_e4m3fn, [out, in]) and `scale_inv` DeepSeek-V3's
// block scales (fp32 [ceil(out/128), ceil(in/128)]): W = decode(codes) × scale_inv per 128×128 block
// (docs/architecture.md §3). The CPU path is weight-only FP8 by default: the codes are read as they
// are by kernels::linear_dot_fp8 (each weight decode(code)·scale in fp32, fp32 products and
// accumulation, the result rounded to x's dtype; fp64 activations use a dequantised fp64 copy).
// With quantize_activations it is W8A8, the numerics of DeepSeek-V3's FP8 GEMM: each row of x is
// cut into 1×128 tiles along `in`, each tile gets scale amax(|tile|)/448 (1 for an all-zero tile)
// and e4m3 codes; y = Σ_k decode(xq)·sx · decode(wq)·sw computed in fp32 from both dequantised
// operands (fp32 accumulation), then rounded to x's dtype.
#pragma once
#include <ATen/ATen.h>

#include <utility>

namespace grpo {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct Linear {
  Linear() = default;
  // Implicit: a plain tensor is a dense weight (never mistaken for codes + scales by brace elision).
  Linear(at::Tensor w, at::Tensor s = {}) : weight(std::move(w)), scale_inv(std::move(s)) {}

  at::Tensor weight;                  // dense W [out, in], or FP8 codes [out, in]
  at::Tensor scale_inv;               // FP8 only: fp32 [ceil(out/128), ceil(in/128)]; undefined when dense
  bool quantize_activations = false;  // FP8 only: W8A8 (see above)

  bool is_fp8() const { return scale_inv.defined(); }
};

// Block-quantises a dense float W [out, in] (128×128 blocks). Throws InputError for inf/NaN.
Linear quantize_linear(const at::Tensor& w);

// W as a dense tensor in `dtype` [out, in]: a cast of a dense weight (none when the dtype agrees),
// a fresh block-wise dequantisation of an FP8 one.
at::Tensor dense_weight(const Linear& w, at::ScalarType dtype);

// x: [..., in] -> [..., out] in x's dtype.
at::Tensor project(const at::Tensor& x, const Linear& w);

// The no-grad kernels' view of w for activations of dtype `act` (fp32 or bf16), for project_rows:
// FP8 codes and scales as held; a dense weight as the kernels read it (fp32 or bf16; an fp32
// weight under bf16 activations is rounded to bf16, as project() uses it). Holds its tensors.
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct KernelWeight {
  at::Tensor weight, scale_inv;  // [out, in]; FP8: codes and fp32 scales
  int64_t out = 0, in = 0;
};
KernelWeight kernel_weight(const Linear& w, at::ScalarType act);

// y = x · Wᵀ on fp32 rows x [m, in] -> y [m, out] fp32 (no rounding to act), the products of
// project() without autograd: one kernel call (kernels/linear_dot.h).
void project_rows(const KernelWeight& w, const float* x, int64_t m, float* y);

}  // namespace grpo
