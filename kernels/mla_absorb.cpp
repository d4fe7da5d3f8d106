#include "kernels/mla_absorb.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "kernels/linear_kn.h"
#include "kernels/weight_load.h"

namespace grpo::kernels {
namespace {

using detail::weight_offset;

// W_UK[h] and W_UV[h] inside wkv [H, nope + v, R].
template <WeightType WT>
const void* w_uk(const void* wkv, const MlaDims& d, int64_t h) {
  return weight_offset<WT>(wkv, h * (d.nope + d.v) * d.rank);
}
template <WeightType WT>
const void* w_uv(const void* wkv, const MlaDims& d, int64_t h) {
  return weight_offset<WT>(wkv, (h * (d.nope + d.v) + d.nope) * d.rank);
}

// Tokens per task: tasks are (head, block of tokens).
constexpr int64_t kTokenBlock = 32;

template <WeightType WT>
void absorb(const float* q, int64_t n, int64_t q_head, const MlaDims& d, const void* wkv, float* q_lat,
            bool reference) {
  const int64_t blocks = (n + kTokenBlock - 1) / kTokenBlock, tasks = d.heads * blocks;
  const int64_t q_row = d.heads * q_head, out_row = d.heads * d.rank;
  auto task = [&](int64_t i) {
    const int64_t h = i % d.heads, t0 = (i / d.heads) * kTokenBlock, rows = std::min(kTokenBlock, n - t0);
    const float* qh = q + t0 * q_row + h * q_head;
    float* oh = q_lat + t0 * out_row + h * d.rank;
    (reference ? linear_kn_reference : linear_kn)(qh, q_row, rows, d.nope, w_uk<WT>(wkv, d, h), WT, d.rank, d.rank, oh,
                                                  out_row);
  };
  if (reference || tasks == 1 || n * d.heads * d.nope * d.rank < (int64_t{1} << 16)) {
    for (int64_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  at::parallel_for(0, tasks, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) task(i);
  });
}

template <WeightType WT>
void value_out(const float* o_lat, int64_t n, const MlaDims& d, const void* wkv, float* out) {
  for (int64_t h = 0; h < d.heads; ++h)
    linear_dot_strided(o_lat + h * d.rank, d.heads * d.rank, n, d.rank, w_uv<WT>(wkv, d, h), WT, d.v, out + h * d.v,
                       d.heads * d.v);
}

}  // namespace

void mla_absorb_query(const float* q, int64_t n, int64_t q_head, const MlaDims& d, const void* wkv, WeightType wtype,
                      float* q_lat) {
  if (n <= 0 || d.heads <= 0) return;
  if (wtype == WeightType::kF32)
    absorb<WeightType::kF32>(q, n, q_head, d, wkv, q_lat, false);
  else
    absorb<WeightType::kBF16>(q, n, q_head, d, wkv, q_lat, false);
}

void mla_absorb_query_reference(const float* q, int64_t n, int64_t q_head, const MlaDims& d, const void* wkv,
                                WeightType wtype, float* q_lat) {
  if (n <= 0 || d.heads <= 0) return;
  if (wtype == WeightType::kF32)
    absorb<WeightType::kF32>(q, n, q_head, d, wkv, q_lat, true);
  else
    absorb<WeightType::kBF16>(q, n, q_head, d, wkv, q_lat, true);
}

void mla_value_out(const float* o_lat, int64_t n, const MlaDims& d, const void* wkv, WeightType wtype, float* out) {
  if (n <= 0 || d.heads <= 0) return;
  if (wtype == WeightType::kF32)
    value_out<WeightType::kF32>(o_lat, n, d, wkv, out);
  else
    value_out<WeightType::kBF16>(o_lat, n, d, wkv, out);
}

}  // namespace grpo::kernels
