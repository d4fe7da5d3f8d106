// y = x · W for W stored [K, N] (row k holds the weights of input k for every output): the product
// whose weight rows run along the inputs, e.g. MLA's query absorption q_nope · W_UK[h] and the
// attention's probabilities · values. One fma chain per element over k = 0 .. K−1, starting from 0
// (batch-invariant by construction; the AVX2 kernel equals the scalar reference bit for bit).
//
// Pure functions; thread-safe; one thread (callers spread independent calls over threads).
#pragma once
#include <cstdint>

#include "kernels/linear_dot.h"

namespace grpo::kernels {

// x: [M, K] fp32 (row stride ldx); w: [K, N] of `wtype` (row stride ldw >= N); y: [M, N] fp32
// (row stride ldy), overwritten.
void linear_kn(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t ldw,
               int64_t n, float* y, int64_t ldy);
void linear_kn_reference(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype,
                         int64_t ldw, int64_t n, float* y, int64_t ldy);

}  // namespace grpo::kernels
