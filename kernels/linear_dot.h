// y = x · Wᵀ on the CPU as one dot product per output element with a fixed summation order: the
// matrix product of the no-grad forward (rollout decode, prefill, the trainer's scoring). Every
// element y[m, n] is computed by the same sequence of operations whatever M, N, the tiling or the
// thread count, so a row's result never depends on the rows beside it (batch invariance,
// model/batch_invariant.h) — by construction, with no padding. One kernel serves GEMV (decode, M
// small) and GEMM (prefill), reading W row by row in its stored [N, K] layout (no packing).
//
// The order (the contract the reference and the AVX2 kernel both implement, bit for bit):
//   s[l] = 0 for l = 0..7;  for k = 0 .. K8-1 (K8 = K - K mod 8):  s[k mod 8] = fma(x[k], w[k], s[k mod 8])
//   t = ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))
//   for k = K8 .. K-1:  t = fma(x[k], w[k], t)
// in fp32, with every fma rounded once. BF16 weights are widened to fp32 exactly (bf16 · fp32
// products are exact in the fma). The AVX2 kernel runs when the CPU has AVX2 and FMA; otherwise
// the scalar reference runs, with the same results.
//
// Pure functions; thread-safe. Threads: at::parallel_for over blocks of outputs (LibTorch's
// intra-op pool), which cannot change a result.
#pragma once
#include <cstdint>

namespace grpo::kernels {

// Weight element types the kernels read directly.
enum class WeightType { kF32, kBF16 };

// x: [M, K] fp32 row-major; w: [N, K] row-major of `wtype` (uint16_t bf16 bits for kBF16);
// y: [M, N] fp32 row-major, overwritten. M, N or K may be 0 (K = 0: y is zeros).
void linear_dot(const float* x, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y);

// The same with row strides: x row r at x + r·ldx (ldx >= k), y row r at y + r·ldy (ldy >= n).
void linear_dot_strided(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n,
                        float* y, int64_t ldy);

// The scalar reference of the same order (one thread); what the tests compare the kernel to.
void linear_dot_reference(const float* x, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y);
void linear_dot_reference_strided(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype,
                                  int64_t n, float* y, int64_t ldy);

// DeepSeek-V3's FP8 weights (model/fp8.h): e4m3 codes [N, K] (one byte each) with fp32 scales
// scale_inv [ceil(N/kFp8Block), ceil(K/kFp8Block)]; element w[n, k] = e4m3(code) · scale of its
// block, rounded to fp32 (exactly model/fp8.h's fp32 dequantisation), then linear_dot's order. The
// weights are read as codes: a quarter of the fp32 bytes, no dequantised copy.
inline constexpr int64_t kFp8Block = 128;
void linear_dot_fp8(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale_inv, int64_t n,
                    float* y);
void linear_dot_fp8_reference(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale_inv,
                              int64_t n, float* y);

// True when linear_dot runs the AVX2/FMA kernel on this CPU (else the scalar reference).
bool linear_dot_uses_avx2();

}  // namespace grpo::kernels
