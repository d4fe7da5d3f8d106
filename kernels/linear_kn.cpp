#include "kernels/linear_kn.h"

#include <algorithm>
#include <cmath>

#include "kernels/weight_load.h"

namespace grpo::kernels {
namespace {

using detail::weight_at;

// Columns [n0, n1) of y.
template <WeightType WT>
void scalar_columns(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, int64_t ldw, int64_t n0,
                    int64_t n1, float* y, int64_t ldy) {
  for (int64_t t = 0; t < m; ++t)
    for (int64_t c = n0; c < n1; ++c) {
      float acc = 0;
      for (int64_t j = 0; j < k; ++j) acc = std::fma(x[t * ldx + j], weight_at<WT>(w, j * ldw + c), acc);
      y[t * ldy + c] = acc;
    }
}

#ifdef GRPO_KERNELS_AVX2

// ROWS (≤ 4) rows × 16 columns [c, c + 16): each weight row slice is read once for all rows.
template <WeightType WT, int ROWS>
__attribute__((target("avx2,fma"))) void tile(const float* x, int64_t ldx, int64_t k, const void* w, int64_t ldw,
                                              int64_t c, float* y, int64_t ldy) {
  __m256 acc[ROWS][2];
  for (int t = 0; t < ROWS; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < k; ++j) {
    const __m256 w0 = detail::load8<WT>(w, j * ldw + c), w1 = detail::load8<WT>(w, j * ldw + c + 8);
    for (int t = 0; t < ROWS; ++t) {
      const __m256 xv = _mm256_broadcast_ss(x + t * ldx + j);
      acc[t][0] = _mm256_fmadd_ps(xv, w0, acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(xv, w1, acc[t][1]);
    }
  }
  for (int t = 0; t < ROWS; ++t) {
    _mm256_storeu_ps(y + t * ldy + c, acc[t][0]);
    _mm256_storeu_ps(y + t * ldy + c + 8, acc[t][1]);
  }
}

template <WeightType WT>
void avx2(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, int64_t ldw, int64_t n, float* y,
          int64_t ldy) {
  const int64_t n16 = n - n % 16;
  for (int64_t c = 0; c < n16; c += 16)
    for (int64_t t = 0; t < m; t += 4) {
      const float* xt = x + t * ldx;
      float* yt = y + t * ldy;
      switch (std::min<int64_t>(4, m - t)) {
        case 4: tile<WT, 4>(xt, ldx, k, w, ldw, c, yt, ldy); break;
        case 3: tile<WT, 3>(xt, ldx, k, w, ldw, c, yt, ldy); break;
        case 2: tile<WT, 2>(xt, ldx, k, w, ldw, c, yt, ldy); break;
        default: tile<WT, 1>(xt, ldx, k, w, ldw, c, yt, ldy); break;
      }
    }
  scalar_columns<WT>(x, ldx, m, k, w, ldw, n16, n, y, ldy);
}

#endif  // GRPO_KERNELS_AVX2

template <WeightType WT>
void run(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, int64_t ldw, int64_t n, float* y,
         int64_t ldy, bool reference) {
  if (m <= 0 || n <= 0) return;
#ifdef GRPO_KERNELS_AVX2
  if (!reference && cpu_has_avx2_fma()) return avx2<WT>(x, ldx, m, k, w, ldw, n, y, ldy);
#endif
  scalar_columns<WT>(x, ldx, m, k, w, ldw, 0, n, y, ldy);
}

}  // namespace

void linear_kn(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t ldw,
               int64_t n, float* y, int64_t ldy) {
  if (wtype == WeightType::kF32)
    run<WeightType::kF32>(x, ldx, m, k, w, ldw, n, y, ldy, false);
  else
    run<WeightType::kBF16>(x, ldx, m, k, w, ldw, n, y, ldy, false);
}

void linear_kn_reference(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype,
                         int64_t ldw, int64_t n, float* y, int64_t ldy) {
  if (wtype == WeightType::kF32)
    run<WeightType::kF32>(x, ldx, m, k, w, ldw, n, y, ldy, true);
  else
    run<WeightType::kBF16>(x, ldx, m, k, w, ldw, n, y, ldy, true);
}

}  // namespace grpo::kernels
