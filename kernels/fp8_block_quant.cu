// One thread block per (block x block) tile of w: 256 threads reduce the tile's max |w| (as float
// bits: for non-negative floats integer order is float order, and inf/NaN sort above every finite
// value), thread 0 turns it into scale_inv exactly as the CPU reference does, then every thread
// encodes its elements with the hardware conversion (round to nearest even, saturate to finite).
#include <cuda_fp8.h>

#include "kernels/fp8_block_quant_kernel.h"

namespace grpo::kernels {
namespace {

constexpr int kThreads = 256;
constexpr float kE4M3Max = 448.0f;

__global__ void fp8_block_quant_kernel(const float* __restrict__ w, int64_t rows, int64_t cols, int64_t block,
                                       uint8_t* __restrict__ q, float* __restrict__ scale_inv,
                                       int* __restrict__ non_finite) {
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * block, c0 = static_cast<int64_t>(blockIdx.x) * block;
  const int64_t nr = min(block, rows - r0), nc = min(block, cols - c0), n = nr * nc;
  // Consecutive threads read consecutive columns of a row: coalesced.
  unsigned int amax = 0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const float x = w[(r0 + i / nc) * cols + c0 + i % nc];
    amax = max(amax, __float_as_uint(x) & 0x7fffffffu);
  }
  for (int off = 16; off > 0; off >>= 1) amax = max(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  __shared__ unsigned int warp_max[kThreads / 32];
  __shared__ float scale_s;
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned int m = 0;
    for (int i = 0; i < kThreads / 32; ++i) m = max(m, warp_max[i]);
    float scale = 1.0f;
    if (m >= 0x7f800000u) {
      atomicExch(non_finite, 1);
    } else if (m != 0) {
      scale = __fdiv_rn(__uint_as_float(m), kE4M3Max);
      if (scale == 0.0f) scale = __uint_as_float(1u);  // the smallest subnormal
    }
    scale_s = scale;
    scale_inv[static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x] = scale;
  }
  __syncthreads();
  const float scale = scale_s;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const int64_t at = (r0 + i / nc) * cols + c0 + i % nc;
    q[at] = __nv_cvt_float_to_fp8(__fdiv_rn(w[at], scale), __NV_SATFINITE, __NV_E4M3);
  }
}

}  // namespace

cudaError_t launch_fp8_block_quant(const float* w, int64_t rows, int64_t cols, int64_t block, uint8_t* q,
                                   float* scale_inv, int* non_finite, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((cols + block - 1) / block), static_cast<unsigned>((rows + block - 1) / block));
  fp8_block_quant_kernel<<<grid, kThreads, 0, stream>>>(w, rows, cols, block, q, scale_inv, non_finite);
  return cudaGetLastError();
}

}  // namespace grpo::kernels
