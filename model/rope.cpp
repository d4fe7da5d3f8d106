#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "model/batch_invariant.h"

namespace grpo {
namespace {

double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

// The (fractional) dim index whose wavelength makes `rotations` turns over `max_pos` positions.
double correction_dim(double rotations, int64_t dim, double base, double max_pos) {
  return dim * std::log(max_pos / (rotations * 2.0 * M_PI)) / (2.0 * std::log(base));
}

}  // namespace

at::Tensor rope_inv_freq(const RopeConfig& rope, int64_t dim) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor exponent = at::arange(0, dim, 2, opts) / static_cast<double>(dim);  // [d/2]
  at::Tensor extrapolation = 1.0 / at::pow(rope.theta, exponent);                // [d/2]
  if (rope.type != "yarn") return extrapolation;
  at::Tensor interpolation = extrapolation / rope.factor;
  double max_pos = static_cast<double>(rope.original_max_position_embeddings);
  double low = correction_dim(rope.beta_fast, dim, rope.theta, max_pos);
  double high = correction_dim(rope.beta_slow, dim, rope.theta, max_pos);
  if (rope.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  // ramp 0 -> keep the extrapolated (original) frequency; ramp 1 -> the interpolated one.
  at::Tensor ramp = ((at::arange(dim / 2, opts) - low) / (high - low)).clamp(0.0, 1.0);
  return interpolation * ramp + extrapolation * (1.0 - ramp);
}

double rope_attention_factor(const RopeConfig& rope) {
  if (rope.type != "yarn") return 1.0;
  if (rope.attention_factor) return *rope.attention_factor;
  if (rope.mscale != 0.0 && rope.mscale_all_dim != 0.0)
    return yarn_mscale(rope.factor, rope.mscale) / yarn_mscale(rope.factor, rope.mscale_all_dim);
  return yarn_mscale(rope.factor, 1.0);
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const ModelConfig& config, const at::Tensor& positions,
                                               at::ScalarType dtype, const at::Tensor& inv_freq) {
  const at::Tensor freq =
      inv_freq.defined() ? inv_freq : rope_inv_freq(config.rope, config.qk_rope_head_dim);    // [d/2] fp64
  at::Tensor angles = positions.to(at::kDouble).unsqueeze(-1) * freq.to(positions.device());  // [..., d/2]
  double f = rope_attention_factor(config.rope);
  return {(cos_invariant(angles) * f).to(dtype), (sin_invariant(angles) * f).to(dtype)};  // batch-invariant
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved) {
  int64_t d = x.size(-1);
  at::Tensor x1, x2;  // [..., d/2] each: the two members of every rotated pair
  if (interleaved) {
    x1 = x.slice(-1, 0, d, 2);
    x2 = x.slice(-1, 1, d, 2);
  } else {
    x1 = x.slice(-1, 0, d / 2);
    x2 = x.slice(-1, d / 2, d);
  }
  return at::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
}

}  // namespace grpo
