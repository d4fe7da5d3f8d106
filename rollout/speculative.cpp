#include "rollout/speculative.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace grpo::rollout {

uint64_t draft_step(uint64_t step) { return step | (uint64_t{1} << 62); }
uint64_t accept_step(uint64_t step) { return step | (uint64_t{2} << 62); }
uint64_t residual_step(uint64_t step) { return step | (uint64_t{3} << 62); }

namespace {

// The token at which the running sum of w (vocabulary order) first exceeds u · sum(w); the last
// token of positive weight when rounding runs past the end.
int64_t inverse_cdf(const std::vector<double>& w, double u) {
  double total = 0;
  for (double x : w) total += x;
  const double target = u * total;
  double sum = 0;
  int64_t last = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0) continue;
    sum += w[i];
    last = static_cast<int64_t>(i);
    if (sum > target) return last;
  }
  return last;
}

}  // namespace

Verdict verify_draft(const float* logp, const float* logq, int64_t v, int64_t draft, double u_accept,
                     double u_residual) {
  const double p_draft = std::exp(static_cast<double>(logp[draft]));
  const double q_draft = std::exp(static_cast<double>(logq[draft]));
  if (u_accept * q_draft < p_draft) return {draft, true};
  std::vector<double> residual(v);
  double mass = 0;
  for (int64_t i = 0; i < v; ++i) {
    residual[i] = std::max(0.0, std::exp(static_cast<double>(logp[i])) - std::exp(static_cast<double>(logq[i])));
    mass += residual[i];
  }
  if (!(mass > 0))
    for (int64_t i = 0; i < v; ++i) residual[i] = std::exp(static_cast<double>(logp[i]));
  return {inverse_cdf(residual, u_residual), false};
}

}  // namespace grpo::rollout
