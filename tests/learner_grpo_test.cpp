// GRPO formulas pinned by hand-computed values and finite-difference gradients.
#include "learner/grpo.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

using namespace grpo;

namespace {
at::Tensor d(std::vector<double> v) { return at::tensor(v, at::kDouble); }
at::Tensor d2(std::vector<double> v, int64_t rows) { return d(std::move(v)).view({rows, -1}); }
}  // namespace

TEST(GrpoAdvantages, GroupNormalisedAndVariants) {
  auto r = d({1, 0, 0, 1, 2, 2, 2, 2});  // two groups of 4
  // group 1: mean 0.5, unbiased std sqrt(1/3); group 2: all equal -> 0.
  auto a = group_advantages(r, 4, AdvantageEstimator::kGrpo);
  double s = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-6);
  EXPECT_NEAR(a[0].item<double>(), s, 1e-12);
  EXPECT_NEAR(a[1].item<double>(), -s, 1e-12);
  EXPECT_NEAR(a[4].item<double>(), 0.0, 1e-12);
  auto dr = group_advantages(r, 4, AdvantageEstimator::kDrGrpo);
  EXPECT_NEAR(dr[0].item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(dr[2].item<double>(), -0.5, 1e-12);
  auto rloo = group_advantages(r, 4, AdvantageEstimator::kRloo);
  EXPECT_NEAR(rloo[0].item<double>(), 4.0 / 3.0 * 0.5, 1e-12);  // r - mean of the other three
  EXPECT_NEAR(rloo[0].item<double>(), 1.0 - 1.0 / 3.0, 1e-12);
}

TEST(GrpoAdvantages, GroupOfOneAndBatchWhitening) {
  auto r = d({3, -1});
  auto a = group_advantages(r, 1, AdvantageEstimator::kGrpo);  // mean 0, std 1 convention
  EXPECT_NEAR(a[0].item<double>(), 3, 1e-12);
  EXPECT_NEAR(a[1].item<double>(), -1, 1e-12);
  auto pp = group_advantages(d({1, 0, 0, 1, 1, 1, 1, 1}), 4, AdvantageEstimator::kReinforcePP);
  // batch mean 0.75, unbiased var (2*0.5625 + 6*0.0625)/7
  double sd = std::sqrt((2 * 0.5625 + 6 * 0.0625) / 7.0) + 1e-6;
  EXPECT_NEAR(pp[0].item<double>(), 0.25 / sd, 1e-12);
  EXPECT_NEAR(pp[1].item<double>(), -0.75 / sd, 1e-12);
  EXPECT_THROW(parse_advantage_estimator("ppo"), InputError);
}

TEST(GrpoLoss, Aggregations) {
  auto per = d2({1, 2, 3, 4, 0, 0}, 2);
  auto mask = d2({1, 1, 1, 1, 0, 0}, 2);
  EXPECT_DOUBLE_EQ(aggregate_loss(per, mask, LossAggregation::kTokenMean).item<double>(), 10.0 / 4);
  EXPECT_DOUBLE_EQ(aggregate_loss(per, mask, LossAggregation::kSeqMeanTokenMean).item<double>(), (2.0 + 4.0) / 2);
  EXPECT_DOUBLE_EQ(aggregate_loss(per, mask, LossAggregation::kSeqMeanTokenSum).item<double>(), (6.0 + 4.0) / 2);
  EXPECT_DOUBLE_EQ(aggregate_loss(per, mask, LossAggregation::kSeqMeanTokenSumNorm, 4).item<double>(), 10.0 / 8);
  EXPECT_EQ(parse_loss_aggregation("seq-mean-token-sum-norm"), LossAggregation::kSeqMeanTokenSumNorm);
  EXPECT_THROW(parse_loss_aggregation("mean"), InputError);
}

TEST(GrpoLoss, ClipHigherAndDualClipByHand) {
  // One token per sequence. ratios 1.5, 1.5, 5, 0.5, 0.5 with advantages +1, -1, -1, +1, -1.
  auto ratio = d2({1.5, 1.5, 5.0, 0.5, 0.5}, 5);
  auto logp = at::log(ratio);
  auto old = at::zeros_like(logp);
  auto A = d({1, -1, -1, 1, -1});
  auto mask = at::ones_like(logp);
  PolicyLossOptions o;
  o.clip_low = 0.2;
  o.clip_high = 0.28;
  o.dual_clip_c = 3.0;
  o.aggregation = LossAggregation::kSeqMeanTokenSum;
  // per-token: -1.28 (clipped at 1+0.28), 1.5, min(5, 3) = 3 (dual clip), -0.5, 0.8 (clipped at 1-0.2)
  auto r = policy_loss(logp, old, A, mask, o);
  EXPECT_NEAR(r.loss.item<double>(), (-1.28 + 1.5 + 3 - 0.5 + 0.8) / 5, 1e-12);
  EXPECT_NEAR(r.clip_fraction, 2.0 / 5, 1e-12);  // tokens 0 and 4 take the clipped branch
  EXPECT_NEAR(r.dual_clip_fraction, 1.0 / 5, 1e-12);
  o.dual_clip_c = 0;  // disabled: token 2 keeps 5
  EXPECT_NEAR(policy_loss(logp, old, A, mask, o).loss.item<double>(), (-1.28 + 1.5 + 5 - 0.5 + 0.8) / 5, 1e-12);
}

TEST(GrpoLoss, TruncatedImportanceSampling) {
  auto logp = d2({0.0}, 1), old = d2({0.0}, 1), mask = d2({1.0}, 1);
  auto A = d({2.0});
  PolicyLossOptions o;
  o.tis_cap = 2.0;
  // pi_old / pi_rollout = e^{ln 3} = 3 -> capped at 2; loss = -A * ratio(1) * 2
  auto rollout = d2({-std::log(3.0)}, 1);
  EXPECT_NEAR(policy_loss(logp, old, A, mask, o, rollout).loss.item<double>(), -4.0, 1e-12);
  rollout = d2({std::log(2.0)}, 1);  // weight 0.5
  EXPECT_NEAR(policy_loss(logp, old, A, mask, o, rollout).loss.item<double>(), -1.0, 1e-12);
}

TEST(GrpoLoss, GradientMatchesFiniteDifferences) {
  at::manual_seed(0);
  auto logp0 = at::randn({3, 5}, at::kDouble) * 0.3;
  auto old = logp0 + at::randn({3, 5}, at::kDouble) * 0.2;
  auto A = d({1.3, -0.7, -2.0});
  auto mask = d2({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, 3);
  for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenMean, LossAggregation::kSeqMeanTokenSum,
                   LossAggregation::kSeqMeanTokenSumNorm}) {
    PolicyLossOptions o;
    o.clip_high = 0.28;
    o.aggregation = agg;
    o.norm_length = 7;
    auto logp = logp0.clone().requires_grad_(true);
    policy_loss(logp, old, A, mask, o).loss.backward();
    auto grad = logp.grad();
    const double h = 1e-6;
    for (int64_t i = 0; i < logp0.numel(); ++i) {
      auto plus = logp0.clone(), minus = logp0.clone();
      plus.view(-1)[i] += h;
      minus.view(-1)[i] -= h;
      double fd = (policy_loss(plus, old, A, mask, o).loss.item<double>() -
                   policy_loss(minus, old, A, mask, o).loss.item<double>()) /
                  (2 * h);
      EXPECT_NEAR(grad.view(-1)[i].item<double>(), fd, 1e-6) << "element " << i;
    }
  }
}

TEST(GrpoKl, EstimatorsByHand) {
  auto logp = d2({0.5, -30.0}, 1), ref = d2({0.0, 0.0}, 1);
  auto k1 = kl_penalty(logp, ref, KlEstimator::kK1);
  auto k2 = kl_penalty(logp, ref, KlEstimator::kK2);
  auto k3 = kl_penalty(logp, ref, KlEstimator::kK3);
  EXPECT_NEAR(k1[0][0].item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(k2[0][0].item<double>(), 0.125, 1e-12);
  EXPECT_NEAR(k3[0][0].item<double>(), std::exp(-0.5) + 0.5 - 1, 1e-12);
  EXPECT_NEAR(k1[0][1].item<double>(), -20.0, 1e-12);  // delta clamped to ±20
  EXPECT_NEAR(k3[0][1].item<double>(), 10.0, 1e-12);   // k3 clamped to ±10
  EXPECT_EQ(parse_kl_estimator("low_var_kl"), KlEstimator::kK3);
}

TEST(GrpoEntropy, ByHand) {
  auto z = d2({0.0, std::log(3.0)}, 1);  // p = [0.25, 0.75]
  double h = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  EXPECT_NEAR(entropy_from_logits(z)[0].item<double>(), h, 1e-12);
  EXPECT_NEAR(entropy_from_logits(at::zeros({1, 8}, at::kDouble))[0].item<double>(), std::log(8.0), 1e-12);
}
