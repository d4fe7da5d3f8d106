// The launcher of the block FP8 quantiser kernel (fp8_block_quant.cu): raw device pointers, no
// LibTorch, so nvcc compiles only CUDA code. Callers go through fp8_block_quant.h.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace grpo::kernels {

// w: [rows, cols] float32, row-major; q: [rows, cols] e4m3 codes; scale_inv:
// [ceil(rows/block), ceil(cols/block)] float32; non_finite: one int, set to 1 when a block holds inf
// or NaN (that block's codes and scale are then unspecified). All on the device of `stream`.
cudaError_t launch_fp8_block_quant(const float* w, int64_t rows, int64_t cols, int64_t block, uint8_t* q,
                                   float* scale_inv, int* non_finite, cudaStream_t stream);

}  // namespace grpo::kernels
