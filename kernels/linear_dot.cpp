#include "kernels/linear_dot.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/weight_load.h"

namespace grpo::kernels {
namespace {

// The weight rows of one product, by element type: row(c) is output c's row of K weights, with
// at(i) its element i as fp32 and (AVX2) load8(i) elements i .. i+7.
struct F32Rows {
  static constexpr int64_t kBytes = 4;
  const float* w;
  int64_t k, n;
  struct Row {
    const float* p;
    float at(int64_t i) const { return p[i]; }
#ifdef GRPO_KERNELS_AVX2
    __attribute__((target("avx2,fma"))) __m256 load8(int64_t i) const { return _mm256_loadu_ps(p + i); }
#endif
  };
  Row row(int64_t c) const { return {w + c * k}; }
};

struct Bf16Rows {
  static constexpr int64_t kBytes = 2;
  const uint16_t* w;
  int64_t k, n;
  struct Row {
    const uint16_t* p;
    float at(int64_t i) const { return detail::bf16_to_float(p[i]); }
#ifdef GRPO_KERNELS_AVX2
    __attribute__((target("avx2,fma"))) __m256 load8(int64_t i) const { return detail::load8<WeightType::kBF16>(p, i); }
#endif
  };
  Row row(int64_t c) const { return {w + c * k}; }
};

// e4m3 codes with one fp32 scale per 128×128 block: element = e4m3(code) · scale, one fp32 rounding.
// Computed as (code's bits placed in an fp32, = e4m3(code)·2^−120 exactly) · (scale·2^120), the
// same single rounding of the same exact product, in two instructions fewer. `scale` holds the
// scales times 2^120 (so every scale must be below 2^7: scaled_fp8_scales checks).
struct Fp8Rows {
  static constexpr int64_t kBytes = 1;
  const uint8_t* w;
  const float* scale;  // [ceil(N/128), ceil(K/128)], each scale_inv · 2^120
  int64_t k, n;
  struct Row {
    const uint8_t* p;
    const float* scale;  // this row's block row of scales, one per 128 inputs
    float at(int64_t i) const { return detail::e4m3_bits_as_float(p[i]) * scale[i / kFp8Block]; }
#ifdef GRPO_KERNELS_AVX2
    __attribute__((target("avx2,fma"))) __m256 load8(int64_t i) const {
      const __m256i c = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i)));
      const __m256i bits = _mm256_and_si256(_mm256_slli_epi32(c, 20), _mm256_set1_epi32(int32_t(0x87F00000u)));
      return _mm256_mul_ps(_mm256_castsi256_ps(bits), _mm256_set1_ps(scale[i / kFp8Block]));
    }
#endif
  };
  Row row(int64_t c) const { return {w + c * k, scale + (c / kFp8Block) * ((k + kFp8Block - 1) / kFp8Block)}; }
};

// The scales of an FP8 weight times 2^120 (exact), for Fp8Rows; empty when a scale is 2^7 or more
// (|w| up to 448·2^7 = 57344; DeepSeek-V3's weights are far below), where 2^120 · scale overflows.
std::vector<float> scaled_fp8_scales(const float* scale_inv, int64_t n, int64_t k) {
  const int64_t count = ((n + kFp8Block - 1) / kFp8Block) * ((k + kFp8Block - 1) / kFp8Block);
  std::vector<float> out(count);
  for (int64_t i = 0; i < count; ++i) {
    if (!(std::fabs(scale_inv[i]) < 0x1p7f)) return {};
    out[i] = scale_inv[i] * 0x1p120f;
  }
  return out;
}

// The FP8 weight dequantised to fp32 [N, K] (the same elements Fp8Rows computes), for scales
// Fp8Rows cannot take.
std::vector<float> dequantized_fp8(const uint8_t* codes, const float* scale_inv, int64_t n, int64_t k) {
  std::vector<float> w(n * k);
  const int64_t blocks = (k + kFp8Block - 1) / kFp8Block;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      w[r * k + c] =
          detail::e4m3_bits_as_float(codes[r * k + c]) * 0x1p120f * scale_inv[(r / kFp8Block) * blocks + c / kFp8Block];
  return w;
}

void fp8_product(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale_inv, int64_t n,
                 float* y, bool reference);

// One element in the contract's order (linear_dot.h).
template <typename RowT>
float dot_reference(const float* x, const RowT& w, int64_t k) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t k8 = k - k % 8;
  for (int64_t i = 0; i < k8; ++i) s[i % 8] = std::fma(x[i], w.at(i), s[i % 8]);
  float t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
  for (int64_t i = k8; i < k; ++i) t = std::fma(x[i], w.at(i), t);
  return t;
}

template <typename Rows>
void reference_block(const float* x, int64_t ldx, int64_t k, const Rows& w, float* y, int64_t ldy, int64_t r0,
                     int64_t r1, int64_t c0, int64_t c1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) y[r * ldy + c] = dot_reference(x + r * ldx, w.row(c), k);
}

#ifdef GRPO_KERNELS_AVX2

// ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)), as dot_reference sums its lanes.
__attribute__((target("avx2,fma"))) inline float lane_sum(__m256 v) {
  const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // s_i + s_{i+4}
  const __m128 c = _mm_add_ps(a, _mm_movehl_ps(a, a));                                  // a0 + a2, a1 + a3
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// An MR × NR tile of y: rows x[0..MR) (stride ldx) against weight rows c0 .. c0+NR; y stride ldy.
template <typename Rows, int MR, int NR>
__attribute__((target("avx2,fma"))) void tile(const float* x, int64_t ldx, int64_t k, const Rows& w, int64_t c0,
                                              float* y, int64_t ldy, bool prefetch) {
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  typename Rows::Row wr[NR];
  for (int c = 0; c < NR; ++c) wr[c] = w.row(c0 + c);
  const int64_t k8 = k - k % 8;
  // The next NR weight rows (the next tile's, adjacent in memory) are prefetched one cache line
  // per row as this tile reads the same offsets: decode streams every weight once, and the
  // hardware prefetcher alone leaves bf16 and FP8 rows (1 KB or less) short of bandwidth. Into L2
  // (T1), not L1: L1's few miss buffers capped one decoding row at 35-60 % of the read bandwidth
  // (bench_kernels --stream: fp32 10-14 -> 17-21 GB/s, bf16 8-9 -> 16-19 GB/s with T1, at::sum 18-29).
  typename Rows::Row ahead[NR];
  int next_rows = 0;
  for (int c = 0; c < NR && c0 + NR + c < w.n; ++c) ahead[next_rows++] = w.row(c0 + NR + c);
  constexpr int64_t kLine = 64 / Rows::kBytes;  // elements per cache line
  for (int64_t i = 0; i < k8; i += 8) {
    if (prefetch && i % kLine == 0)
      for (int c = 0; c < next_rows; ++c) _mm_prefetch(reinterpret_cast<const char*>(ahead[c].p + i), _MM_HINT_T1);
    __m256 xv[MR];
    for (int r = 0; r < MR; ++r) xv[r] = _mm256_loadu_ps(x + r * ldx + i);
    for (int c = 0; c < NR; ++c) {
      const __m256 wv = wr[c].load8(i);
      for (int r = 0; r < MR; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      float t = lane_sum(acc[r][c]);
      for (int64_t i = k8; i < k; ++i) t = std::fma(x[r * ldx + i], wr[c].at(i), t);
      y[r * ldy + c] = t;
    }
}

template <typename Rows, int MR>
void tile_cols(const float* x, int64_t ldx, int64_t k, const Rows& w, int64_t c0, int nr, float* y, int64_t ldy,
               bool prefetch) {
  switch (nr) {
    case 4: return tile<Rows, MR, 4>(x, ldx, k, w, c0, y, ldy, prefetch);
    case 3: return tile<Rows, MR, 3>(x, ldx, k, w, c0, y, ldy, prefetch);
    case 2: return tile<Rows, MR, 2>(x, ldx, k, w, c0, y, ldy, prefetch);
    default: return tile<Rows, MR, 1>(x, ldx, k, w, c0, y, ldy, prefetch);
  }
}

constexpr int64_t kTileRows = 3, kTileCols = 4;

// Rows [r0, r1) × outputs [c0, c1) of y, in MR × NR tiles: for each group of 4 weight rows (kept
// in L1) every row tile of x.
template <typename Rows>
void avx2_block(const float* x, int64_t ldx, int64_t k, const Rows& w, float* y, int64_t ldy, int64_t r0, int64_t r1,
                int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; c += kTileCols) {
    const int nr = static_cast<int>(std::min(kTileCols, c1 - c));
    for (int64_t r = r0; r < r1; r += kTileRows) {
      const int64_t mr = std::min(kTileRows, r1 - r);
      float* yt = y + r * ldy + c;
      const float* xt = x + r * ldx;
      const bool prefetch = r == r0;  // the first row tile brings the next weight rows in
      if (mr == 3)
        tile_cols<Rows, 3>(xt, ldx, k, w, c, nr, yt, ldy, prefetch);
      else if (mr == 2)
        tile_cols<Rows, 2>(xt, ldx, k, w, c, nr, yt, ldy, prefetch);
      else
        tile_cols<Rows, 1>(xt, ldx, k, w, c, nr, yt, ldy, prefetch);
    }
  }
}

#endif  // GRPO_KERNELS_AVX2

// Tasks of at most kBlockRows rows × kBlockCols outputs; a task's weight rows stay in L2.
constexpr int64_t kBlockRows = 48, kBlockCols = 64;

template <typename Rows>
void run(const float* x, int64_t ldx, int64_t m, int64_t k, const Rows& w, int64_t n, float* y, int64_t ldy,
         bool reference) {
  if (m <= 0 || n <= 0) return;
  const int64_t row_blocks = (m + kBlockRows - 1) / kBlockRows, col_blocks = (n + kBlockCols - 1) / kBlockCols;
  auto block = [&](int64_t task) {
    const int64_t rb = task / col_blocks, cb = task % col_blocks;
    const int64_t r0 = rb * kBlockRows, r1 = std::min(m, r0 + kBlockRows);
    const int64_t c0 = cb * kBlockCols, c1 = std::min(n, c0 + kBlockCols);
#ifdef GRPO_KERNELS_AVX2
    if (!reference && cpu_has_avx2_fma()) return avx2_block(x, ldx, k, w, y, ldy, r0, r1, c0, c1);
#endif
    reference_block(x, ldx, k, w, y, ldy, r0, r1, c0, c1);
  };
  const int64_t tasks = row_blocks * col_blocks;
  // Below ~16k multiply-adds a parallel region costs more than it saves (bench_rollout, 2 threads:
  // 16k decodes 32 sequences 10-20 % faster than 64k, 256k slows one sequence by ~25 %); the
  // reference is serial.
  if (reference || tasks == 1 || m * n * k < (int64_t{1} << 14)) {
    for (int64_t t = 0; t < tasks; ++t) block(t);
    return;
  }
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) block(t);
  });
}

void dispatch(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y,
              int64_t ldy, bool reference) {
  if (wtype == WeightType::kF32)
    run(x, ldx, m, k, F32Rows{static_cast<const float*>(w), k, n}, n, y, ldy, reference);
  else
    run(x, ldx, m, k, Bf16Rows{static_cast<const uint16_t*>(w), k, n}, n, y, ldy, reference);
}

void fp8_product(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale_inv, int64_t n,
                 float* y, bool reference) {
  if (m <= 0 || n <= 0) return;
  const std::vector<float> scales = scaled_fp8_scales(scale_inv, n, k);
  if (!scales.empty()) return run(x, k, m, k, Fp8Rows{codes, scales.data(), k, n}, n, y, n, reference);
  const std::vector<float> w = dequantized_fp8(codes, scale_inv, n, k);  // huge scales: the same elements
  run(x, k, m, k, F32Rows{w.data(), k, n}, n, y, n, reference);
}

}  // namespace

void linear_dot_strided(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n,
                        float* y, int64_t ldy) {
  dispatch(x, ldx, m, k, w, wtype, n, y, ldy, false);
}

void linear_dot(const float* x, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y) {
  dispatch(x, k, m, k, w, wtype, n, y, n, false);
}

void linear_dot_reference_strided(const float* x, int64_t ldx, int64_t m, int64_t k, const void* w, WeightType wtype,
                                  int64_t n, float* y, int64_t ldy) {
  dispatch(x, ldx, m, k, w, wtype, n, y, ldy, true);
}

void linear_dot_reference(const float* x, int64_t m, int64_t k, const void* w, WeightType wtype, int64_t n, float* y) {
  dispatch(x, k, m, k, w, wtype, n, y, n, true);
}

void linear_dot_fp8(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale_inv, int64_t n,
                    float* y) {
  fp8_product(x, m, k, codes, scale_inv, n, y, false);
}

void linear_dot_fp8_reference(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale_inv,
                              int64_t n, float* y) {
  fp8_product(x, m, k, codes, scale_inv, n, y, true);
}

bool linear_dot_uses_avx2() {
#ifdef GRPO_KERNELS_AVX2
  return cpu_has_avx2_fma();
#else
  return false;
#endif
}

}  // namespace grpo::kernels
