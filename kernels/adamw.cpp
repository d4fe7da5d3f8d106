#include "kernels/adamw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "kernels/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GRPO_ADAMW_AVX2 1
#endif

namespace grpo::kernels {
namespace {

// The update's fp32 constants (adamw.h).
struct Constants {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, neg_step, bc2, eps;
};

Constants constants_of(const AdamWStep& s) {
  const double bc1 = 1.0 - std::pow(s.beta1, double(s.step)), bc2 = 1.0 - std::pow(s.beta2, double(s.step));
  return {float(1.0 - s.lr * s.weight_decay),
          float(s.beta1),
          float(1.0 - s.beta1),
          float(s.beta2),
          float(1.0 - s.beta2),
          float(-s.lr / bc1),
          float(bc2),
          float(s.eps)};
}

void update_scalar(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end, const Constants& c) {
  for (int64_t i = begin; i < end; ++i) {
    const float pi = p[i] * c.decay;
    const float mi = std::fma(g[i], c.one_minus_beta1, c.beta1 * m[i]);
    const float vi = std::fma(g[i], c.one_minus_beta2 * g[i], c.beta2 * v[i]);
    const float denom = std::sqrt(vi / c.bc2) + c.eps;
    p[i] = std::fma(c.neg_step, mi / denom, pi);
    m[i] = mi;
    v[i] = vi;
  }
}

// Sum of squares of x[0 .. n) (n <= kSumSquaresBlock) in adamw.h's order.
double block_sum_scalar(const float* x, int64_t n) {
  double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t n8 = n - n % 8;
  for (int64_t i = 0; i < n8; ++i) l[i % 8] = std::fma(double(x[i]), double(x[i]), l[i % 8]);
  double t = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
  for (int64_t i = n8; i < n; ++i) t = std::fma(double(x[i]), double(x[i]), t);
  return t;
}

#ifdef GRPO_ADAMW_AVX2
__attribute__((target("avx2,fma"))) void update_avx2(float* p, const float* g, float* m, float* v, int64_t begin,
                                                     int64_t end, const Constants& c) {
  const __m256 decay = _mm256_set1_ps(c.decay), b1 = _mm256_set1_ps(c.beta1), omb1 = _mm256_set1_ps(c.one_minus_beta1),
               b2 = _mm256_set1_ps(c.beta2), omb2 = _mm256_set1_ps(c.one_minus_beta2),
               neg_step = _mm256_set1_ps(c.neg_step), bc2 = _mm256_set1_ps(c.bc2), eps = _mm256_set1_ps(c.eps);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    const __m256 mi = _mm256_fmadd_ps(gi, omb1, _mm256_mul_ps(b1, _mm256_loadu_ps(m + i)));
    const __m256 vi = _mm256_fmadd_ps(gi, _mm256_mul_ps(omb2, gi), _mm256_mul_ps(b2, _mm256_loadu_ps(v + i)));
    const __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vi, bc2)), eps);
    _mm256_storeu_ps(p + i, _mm256_fmadd_ps(neg_step, _mm256_div_ps(mi, denom), pi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
  }
  update_scalar(p, g, m, v, i, end, c);
}

__attribute__((target("avx2,fma"))) double block_sum_avx2(const float* x, int64_t n) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();  // lanes 0-3 and 4-7
  const int64_t n8 = n - n % 8;
  for (int64_t i = 0; i < n8; i += 8) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    lo = _mm256_fmadd_pd(a, a, lo);
    hi = _mm256_fmadd_pd(b, b, hi);
  }
  double l[8];
  _mm256_storeu_pd(l, lo);
  _mm256_storeu_pd(l + 4, hi);
  double t = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
  for (int64_t i = n8; i < n; ++i) t = std::fma(double(x[i]), double(x[i]), t);
  return t;
}
#endif

constexpr int64_t kUpdateGrain = 1 << 15;  // elements per parallel task

double sum_squares_impl(const float* x, int64_t n, bool reference) {
  const int64_t blocks = (n + kSumSquaresBlock - 1) / kSumSquaresBlock;
  std::vector<double> sums(blocks, 0.0);
  auto run = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * kSumSquaresBlock, len = std::min(kSumSquaresBlock, n - begin);
#ifdef GRPO_ADAMW_AVX2
      if (!reference && cpu_has_avx2_fma()) {
        sums[b] = block_sum_avx2(x + begin, len);
        continue;
      }
#endif
      sums[b] = block_sum_scalar(x + begin, len);
    }
  };
  if (reference)
    run(0, blocks);
  else
    at::parallel_for(0, blocks, 4, run);
  double total = 0;
  for (double s : sums) total += s;
  return total;
}

}  // namespace

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  const Constants c = constants_of(s);
  at::parallel_for(0, n, kUpdateGrain, [&](int64_t begin, int64_t end) {
#ifdef GRPO_ADAMW_AVX2
    if (cpu_has_avx2_fma()) return update_avx2(p, g, m, v, begin, end, c);
#endif
    update_scalar(p, g, m, v, begin, end, c);
  });
}

void adamw_update_reference(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  update_scalar(p, g, m, v, 0, n, constants_of(s));
}

double sum_squares(const float* x, int64_t n) { return sum_squares_impl(x, n, false); }
double sum_squares_reference(const float* x, int64_t n) { return sum_squares_impl(x, n, true); }

}  // namespace grpo::kernels
