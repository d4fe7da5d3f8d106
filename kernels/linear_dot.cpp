#include "kernels/linear_dot.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "kernels/weight_load.h"

namespace grpo::kernels {
namespace {

using detail::weight_at;

// One element in the contract's order (linear_dot.h); w points at the output's weight row.
template <WeightType WT>
float dot_reference(const float* x, const void* w, int64_t k) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t k8 = k - k % 8;
  for (int64_t i = 0; i < k8; ++i) s[i % 8] = std::fma(x[i], weight_at<WT>(w, i), s[i % 8]);
  float t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
  for (int64_t i = k8; i < k; ++i) t = std::fma(x[i], weight_at<WT>(w, i), t);
  return t;
}

template <WeightType WT>
const void* weight_row(const void* w, int64_t row, int64_t k) {
  return detail::weight_offset<WT>(w, row * k);
}

template <WeightType WT>
void reference_rows(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, int64_t n, float* y,
                    int64_t ldy) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) y[r * ldy + c] = dot_reference<WT>(x + r * ldx, weight_row<WT>(w, c, k), k);
}

#ifdef GRPO_KERNELS_AVX2

using detail::cpu_has_avx2_fma;
using detail::load8;

// ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)), as dot_reference sums its lanes.
__attribute__((target("avx2,fma"))) inline float lane_sum(__m256 v) {
  const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // s_i + s_{i+4}
  const __m128 c = _mm_add_ps(a, _mm_movehl_ps(a, a));                                  // a0 + a2, a1 + a3
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// An MR × NR tile of y: rows x[0..MR) (stride ldx), weight rows w[0..NR) (stride k); y stride ldy.
template <WeightType WT, int MR, int NR>
__attribute__((target("avx2,fma"))) void tile(const float* x, int64_t ldx, int64_t k, const void* w, float* y,
                                              int64_t ldy) {
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  const void* wr[NR];
  for (int c = 0; c < NR; ++c) wr[c] = weight_row<WT>(w, c, k);
  const int64_t k8 = k - k % 8;
  for (int64_t i = 0; i < k8; i += 8) {
    __m256 xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = _mm256_loadu_ps(x + r * ldx + i);
    for (int c = 0; c < NR; ++c) {
      const __m256 wv = load8<WT>(wr[c], i);
      for (int r = 0; r < MR; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      float t = lane_sum(acc[r][c]);
      for (int64_t i = k8; i < k; ++i) t = std::fma(x[r * ldx + i], weight_at<WT>(wr[c], i), t);
      y[r * ldy + c] = t;
    }
}

template <WeightType WT, int MR>
void tile_cols(const float* x, int64_t ldx, int64_t k, const void* w, int nr, float* y, int64_t ldy) {
  switch (nr) {
    case 4: return tile<WT, MR, 4>(x, ldx, k, w, y, ldy);
    case 3: return tile<WT, MR, 3>(x, ldx, k, w, y, ldy);
    case 2: return tile<WT, MR, 2>(x, ldx, k, w, y, ldy);
    default: return tile<WT, MR, 1>(x, ldx, k, w, y, ldy);
  }
}

constexpr int64_t kTileRows = 3, kTileCols = 4;

// Rows [r0, r1) × outputs [c0, c1) of y, in MR × NR tiles: for each group of 4 weight rows (kept
// in L1) every row tile of x.
template <WeightType WT>
void avx2_block(const float* x, int64_t ldx, int64_t k, const void* w, float* y, int64_t ldy, int64_t r0, int64_t r1,
                int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; c += kTileCols) {
    const int nr = static_cast<int>(std::min(kTileCols, c1 - c));
    const void* wc = weight_row<WT>(w, c, k);
    for (int64_t r = r0; r < r1; r += kTileRows) {
      const int64_t mr = std::min(kTileRows, r1 - r);
      float* yt = y + r * ldy + c;
      const float* xt = x + r * ldx;
      if (mr == 3)
        tile_cols<WT, 3>(xt, ldx, k, wc, nr, yt, ldy);
      else if (mr == 2)
        tile_cols<WT, 2>(xt, ldx, k, wc, nr, yt, ldy);
      else
        tile_cols<WT, 1>(xt, ldx, k, wc, nr, yt, ldy);
    }
  }
}

#endif  // GRPO_KERNELS_AVX2

// Tasks of at most kBlockRows rows × kBlockCols outputs; a task's weight rows stay in L2.
constexpr int64_t kBlockRows = 48, kBlockCols = 64;

template <WeightType WT>
void run(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, int64_t n, float* y, int64_t ldy) {
  const int64_t row_blocks = (m + kBlockRows - 1) / kBlockRows, col_blocks = (n + kBlockCols - 1) / kBlockCols;
  auto block = [&](int64_t task) {
    const int64_t rb = task / col_blocks, cb = task % col_blocks;
    const int64_t r0 = rb * kBlockRows, r1 = std::min(m, r0 + kBlockRows);
    const int64_t c0 = cb * kBlockCols, c1 = std::min(n, c0 + kBlockCols);
#ifdef GRPO_KERNELS_AVX2
    if (cpu_has_avx2_fma()) return avx2_block<WT>(x, ldx, k, w, y, ldy, r0, r1, c0, c1);
#endif
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) y[r * ldy + c] = dot_reference<WT>(x + r * ldx, weight_row<WT>(w, c, k), k);
  };
  const int64_t tasks = row_blocks * col_blocks;
  // Below ~64k multiply-adds a parallel region costs more than it saves.
  if (tasks == 1 || m * n * k < (int64_t{1} << 16)) {
    for (int64_t t = 0; t < tasks; ++t) block(t);
    return;
  }
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) block(t);
  });
}

}  // namespace

void linear_dot_strided(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n,
                        float* y, int64_t ldy) {
  if (m <= 0 || n <= 0) return;
  if (wtype == WeightType::kF32)
    run<WeightType::kF32>(x, ldx, m, k, w, n, y, ldy);
  else
    run<WeightType::kBF16>(x, ldx, m, k, w, n, y, ldy);
}

void linear_dot(const float* x, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y) {
  linear_dot_strided(x, k, m, k, w, wtype, n, y, n);
}

void linear_dot_reference_strided(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype,
                                  int64_t n, float* y, int64_t ldy) {
  if (m <= 0 || n <= 0) return;
  if (wtype == WeightType::kF32)
    reference_rows<WeightType::kF32>(x, ldx, m, k, w, n, y, ldy);
  else
    reference_rows<WeightType::kBF16>(x, ldx, m, k, w, n, y, ldy);
}

void linear_dot_reference(const float* x, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y) {
  linear_dot_reference_strided(x, k, m, k, w, wtype, n, y, n);
}

bool linear_dot_uses_avx2() {
#ifdef GRPO_KERNELS_AVX2
  return cpu_has_avx2_fma();
#else
  return false;
#endif
}

}  // namespace grpo::kernels
