#include "kernels/rms_norm.h"

#include <cmath>

namespace grpo::kernels {

void rms_norm_rows(const float* x, int64_t ldx, int64_t m, int64_t d, const float* weight, float eps, bool round_bf16,
                   float* out, int64_t ldo) {
  const int64_t d8 = d - d % 8;
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < d8; i += 8)
      for (int l = 0; l < 8; ++l) {
        const float sq = xr[i + l] * xr[i + l];
        s[l] += sq;
      }
    float ss = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
    for (int64_t i = d8; i < d; ++i) {
      const float sq = xr[i] * xr[i];
      ss += sq;
    }
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    float* o = out + r * ldo;
    if (round_bf16) {
      for (int64_t i = 0; i < d; ++i) o[i] = round_to_bf16(weight[i] * round_to_bf16(xr[i] * inv));
    } else {
      for (int64_t i = 0; i < d; ++i) o[i] = weight[i] * (xr[i] * inv);
    }
  }
}

}  // namespace grpo::kernels
