#include "kernels/latent_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/linear_dot.h"
#include "kernels/linear_kn.h"

namespace grpo::kernels {
namespace {

// scores [H, count] -> probabilities in place, row by row, in the header's order.
void softmax_rows(float* p, int64_t heads, int64_t count, float scale) {
  for (int64_t h = 0; h < heads; ++h) {
    float* row = p + h * count;
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < count; ++j) {
      row[j] *= scale;
      top = std::max(top, row[j]);
    }
    float sum = 0;
    for (int64_t j = 0; j < count; ++j) {
      row[j] = std::exp(row[j] - top);
      sum += row[j];
    }
    for (int64_t j = 0; j < count; ++j) row[j] /= sum;
  }
}

void attend(const float* q, int64_t heads, int64_t k, const float* keys, int64_t count, int64_t value_dim, float scale,
            float* scratch, float* out, bool reference) {
  (reference ? linear_dot_reference_strided : linear_dot_strided)(q, k, heads, k, keys, WeightType::kF32, count,
                                                                  scratch, count);
  softmax_rows(scratch, heads, count, scale);
  (reference ? linear_kn_reference : linear_kn)(scratch, count, heads, count, keys, WeightType::kF32, k, value_dim, out,
                                                value_dim);
}

}  // namespace

void latent_attention(const float* q, int64_t heads, int64_t k, const float* keys, int64_t count, int64_t value_dim,
                      float scale, float* scratch, float* out) {
  attend(q, heads, k, keys, count, value_dim, scale, scratch, out, false);
}

void latent_attention_reference(const float* q, int64_t heads, int64_t k, const float* keys, int64_t count,
                                int64_t value_dim, float scale, float* scratch, float* out) {
  attend(q, heads, k, keys, count, value_dim, scale, scratch, out, true);
}

}  // namespace grpo::kernels
