// DeepSeek-V3's 128x128 block FP8 quantisation on a CUDA device: the GPU twin of
// grpo::quantize_fp8_blocks (model/fp8.h, the CPU reference it is tested against bit for bit in
// tests/kernels_fp8_block_quant_test.cpp). Built only with the CUDA parts (GRPO_WITH_CUDA).
//
// Rule (the same as the CPU reference): block b of w has scale_inv[b] = amax(|w_b|) / 448 (1 for an
// all-zero block, the smallest subnormal when the quotient underflows), and codes
// q = e4m3(w / scale_inv), rounded to nearest even and saturated to +-448.
// Thread-safe: runs on the current CUDA stream of w's device; outputs are new tensors.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace grpo::kernels {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct Fp8BlockCodes {
  at::Tensor q;          // kFloat8_e4m3fn [rows, cols], on w's device
  at::Tensor scale_inv;  // float32 [ceil(rows/block), ceil(cols/block)], on w's device
};

// w: a 2-D floating CUDA tensor [rows, cols] (converted to contiguous float32 first).
// Throws std::invalid_argument for a non-CUDA, non-2-D or non-floating w or block <= 0, and
// grpo::InputError when a block holds inf or NaN.
Fp8BlockCodes quantize_fp8_blocks_cuda(const at::Tensor& w, int64_t block = 128);

}  // namespace grpo::kernels
