// fp32 → bf16 → fp32 with round to nearest even: LibTorch's cast (c10::BFloat16), bit for bit,
// inline for the element loops of the fused layer and the RMSNorm kernel. NaN stays NaN (as the
// quiet NaN c10's scalar cast writes; LibTorch's vector cast writes other NaN bits).
#pragma once
#include <cstdint>
#include <cstring>

namespace grpo::kernels {

inline float round_to_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    u = 0x7FC00000u;
  } else {
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  }
  std::memcpy(&v, &u, sizeof v);
  return v;
}

}  // namespace grpo::kernels
