// The optimizer's passes over fp32 master weights as single fused loops: one AdamW update reads
// each parameter, gradient and moment once and writes them once (LibTorch's op-by-op update makes
// about ten passes and two temporaries), and the gradients' sum of squares for the global norm is
// accumulated in fp64 without an fp64 copy of the gradients.
//
// The AdamW update of one element (torch.optim.AdamW's, decoupled weight decay), in fp32 with every
// fma rounded once — the contract the AVX2 kernel and the scalar reference both implement, bit
// for bit:
//   p = p · decay                              decay = 1 − lr·weight_decay
//   m = fma(g, 1 − β1, β1 · m)
//   v = fma(g, (1 − β2) · g, β2 · v)
//   p = fma(−step, m / (sqrt(v / bc2) + eps), p)   step = lr / bc1; bc_i = 1 − β_i^t
// (decay, 1 − β1, 1 − β2, step, bc2, eps: fp32 constants computed in fp64 and rounded once).
//
// Sum of squares: blocks of kSumSquaresBlock elements, each summed in 8 fp64 lanes (lane = index
// mod 8; x² is exact in fp64) joined as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) plus the
// tail in order; the block sums are added in block order. The result does not depend on the
// thread count.
//
// Pure functions over caller-owned arrays; thread-safe for disjoint arrays. Threads:
// at::parallel_for (LibTorch's intra-op pool), which cannot change a result.
#pragma once
#include <cstdint>

namespace grpo::kernels {

struct AdamWStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t step = 1;  // t, 1-based: the bias corrections 1 − β^t
};

// One AdamW update of n elements in place: p (parameters), m and v (the moments); g (gradients) is read.
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);
// The scalar reference of the same order (one thread).
void adamw_update_reference(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);

inline constexpr int64_t kSumSquaresBlock = 1 << 14;

// Σ x[i]² in fp64.
double sum_squares(const float* x, int64_t n);
double sum_squares_reference(const float* x, int64_t n);

}  // namespace grpo::kernels
