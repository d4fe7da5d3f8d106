// Internal to kernels/: reading fp32, bf16 or FP8 weight elements as fp32, scalar and 8 at a time (AVX2).
// Widening bf16 to fp32 is exact (the bf16 bits are the high half of the fp32 ones).
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/linear_dot.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GRPO_KERNELS_AVX2 1
#endif

namespace grpo::kernels::detail {

inline float bf16_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// An FP8 e4m3 code (1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities) with its
// exponent and mantissa bits placed in an fp32 (a tiny normal, or a subnormal for e4m3
// subnormals): its value times 2^−120, exactly. The NaN codes 0x7F / 0xFF give 480·2^−120 and
// its negative; the quantiser never writes them.
inline float e4m3_bits_as_float(uint8_t code) {
  const uint32_t bits = (static_cast<uint32_t>(code & 0x7F) << 20) | (static_cast<uint32_t>(code & 0x80) << 24);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Element i of w.
template <WeightType WT>
inline float weight_at(const void* w, int64_t i) {
  if constexpr (WT == WeightType::kF32)
    return static_cast<const float*>(w)[i];
  else
    return bf16_to_float(static_cast<const uint16_t*>(w)[i]);
}

// The address of element i of w.
template <WeightType WT>
inline const void* weight_offset(const void* w, int64_t i) {
  const size_t bytes = WT == WeightType::kF32 ? sizeof(float) : sizeof(uint16_t);
  return static_cast<const char*>(w) + static_cast<size_t>(i) * bytes;
}

#ifdef GRPO_KERNELS_AVX2
// Elements i .. i+7 of w as fp32.
template <WeightType WT>
__attribute__((target("avx2,fma"))) inline __m256 load8(const void* w, int64_t i) {
  if constexpr (WT == WeightType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}
#endif

}  // namespace grpo::kernels::detail
