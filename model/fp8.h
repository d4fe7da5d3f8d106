// FP8 codes and block-scaled quantisation: the CPU reference the CUDA kernels are checked against.
//
// e4m3fn (OCP "E4M3", torch.float8_e4m3fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no
// infinities; S.1111.111 is NaN; largest finite 448 (0x7E); smallest normal 2^-6 (0x08);
// subnormals m * 2^-9. e5m2: 1 sign, 5 exponent (bias 15), 2 mantissa bits, IEEE-style inf/NaN.
//
// Block scaling as in DeepSeek-V3: a weight [out, in] is cut into 128x128 blocks; each block b has
// scale_inv[b] = amax(|w_b|) / 448 and codes q = e4m3(w / scale_inv); w ~ decode(q) * scale_inv.
// Activations use the same rule per 1x128 tile of each row.
// All tensors here are CPU; codes are LibTorch's native float8 (q: at::kFloat8_e4m3fn; e5m2 codes
// at::kFloat8_e5m2), scales and results are float32. The arithmetic is our own (saturating, exact,
// vectorised); tests pin it to LibTorch's float8 conversions code for code.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "model/dtype.h"

namespace grpo {

inline constexpr float kFp8E4M3Max = 448.0f;
inline constexpr int64_t kFp8BlockSize = 128;
// A block-quantised `X` is stored with its scales as `X` + this suffix (X.weight_scale_inv).
inline constexpr const char* kFp8ScaleSuffix = "_scale_inv";

// Round-to-nearest-even onto e4m3fn; saturates to +-448 (inf included); NaN -> 0x7F.
uint8_t fp8_e4m3_encode(float x);
float fp8_e4m3_decode(uint8_t code);
float fp8_e5m2_decode(uint8_t code);

// Elementwise over tensors: any float tensor -> kFloat8_e4m3fn codes of the same shape, and float8
// codes (kFloat8_e4m3fn or kFloat8_e5m2) back to float32.
at::Tensor fp8_e4m3_encode(const at::Tensor& x);
at::Tensor fp8_decode(const at::Tensor& codes);

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct Fp8Blocks {
  at::Tensor q;      // kFloat8_e4m3fn, the input's shape
  at::Tensor scale;  // float32 [ceil(rows/block_rows), ceil(cols/block_cols)]: amax/448 (1 for all-zero blocks)
};

// Weight [out, in] -> codes [out, in], scale_inv [ceil(out/block), ceil(in/block)].
// Throws grpo::InputError when a block holds inf or NaN.
Fp8Blocks quantize_fp8_blocks(const at::Tensor& w, int64_t block = kFp8BlockSize);
// Codes [out, in] (e4m3 or e5m2) with scale_inv [ceil(out/block), ceil(in/block)] -> float32 [out, in].
// Throws grpo::InputError if scale_inv's shape does not match.
at::Tensor dequantize_fp8_blocks(const at::Tensor& q, const at::Tensor& scale_inv, int64_t block = kFp8BlockSize);
// The same values written into `out` (contiguous [out, in], float32, bfloat16 or float64; each
// value is the float32 product decode(q) · scale_inv rounded to out's dtype), without allocating:
// one 256-entry table per block, so the inner loop is a table look-up. e4m3 codes.
void dequantize_fp8_blocks_into(const at::Tensor& q, const at::Tensor& scale_inv, at::Tensor& out,
                                int64_t block = kFp8BlockSize);

// Activations [M, K] -> codes [M, K], scale [M, ceil(K/tile)] (one per 1 x tile slice of a row).
Fp8Blocks quantize_fp8_act_tiles(const at::Tensor& x, int64_t tile = kFp8BlockSize);
at::Tensor dequantize_fp8_act_tiles(const at::Tensor& q, const at::Tensor& scale, int64_t tile = kFp8BlockSize);

}  // namespace grpo
