// The off-policy corrections (learner/off_policy.h) pinned by hand-computed values, finite-difference
// gradients (float64) and the boundary cases of their masks: a ratio exactly on a threshold is kept,
// an empty sequence keeps nothing, a token with mask 0 changes no sequence statistic.
#include "learner/off_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "common/config.h"
#include "common/error.h"
#include "learner/trainer_options.h"
#include "learner_options_testutil.h"

using namespace grpo;

namespace {
at::Tensor d(std::vector<double> v) { return at::tensor(v, at::kDouble); }
at::Tensor d2(std::vector<double> v, int64_t rows) { return d(std::move(v)).view({rows, -1}); }

std::vector<double> values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous().view(-1);
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Autograd's gradient of f at x0 against central differences, element by element.
void expect_gradient_matches_finite_differences(const at::Tensor& x0, const std::function<at::Tensor(at::Tensor)>& f) {
  at::Tensor x = x0.clone().requires_grad_(true);
  f(x).backward();
  const at::Tensor grad = x.grad();
  const double h = 1e-6;
  for (int64_t i = 0; i < x0.numel(); ++i) {
    at::Tensor plus = x0.clone(), minus = x0.clone();
    plus.view(-1)[i] += h;
    minus.view(-1)[i] -= h;
    const double fd = (f(plus).item<double>() - f(minus).item<double>()) / (2 * h);
    EXPECT_NEAR(grad.view(-1)[i].item<double>(), fd, 1e-6) << "element " << i;
  }
}
}  // namespace

TEST(OffPolicyGspo, SequenceRatioAndClippedLossByHand) {
  // Sequence 0: logp − old_logp = [0.1, 0.3] -> mean 0.2, s_0 = e^0.2 = 1.2214 (> 1 + 0.1: clipped);
  // A_0 = +1 -> min(1.2214, 1.1) = 1.1.
  // Sequence 1: [-0.2, 0.0] and a mask-0 token with difference 5 (ignored) -> mean -0.1,
  // s_1 = e^-0.1 = 0.904837 (inside [0.9, 1.1]); A_1 = -2 -> min(-1.809675, -1.809675) = -1.809675.
  // loss = -(1.1 - 1.809675) / 2 = 0.3548374; clip fraction: sequence 0's 2 tokens of 4 = 0.5.
  const at::Tensor old = d2({0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, 2);
  const at::Tensor logp = d2({0.1, 0.3, 0.0, -0.2, 0.0, 5.0}, 2);
  const at::Tensor mask = d2({1, 1, 0, 1, 1, 0}, 2);
  const at::Tensor A = d({1.0, -2.0});
  const auto s = values(gspo_sequence_ratio(logp, old, mask));
  EXPECT_NEAR(s[0], std::exp(0.2), 1e-12);
  EXPECT_NEAR(s[1], std::exp(-0.1), 1e-12);
  const PolicyLossResult r = gspo_loss(logp, old, A, mask, 0.1, 0.1);
  EXPECT_NEAR(r.loss.item<double>(), -(1.1 - 2 * std::exp(-0.1)) / 2, 1e-12);
  EXPECT_NEAR(r.clip_fraction, 0.5, 1e-12);
  EXPECT_NEAR(r.approx_kl, 0.5 * (0.01 + 0.09 + 0.04) / 4, 1e-12);
  // keep = 0 on sequence 0's first token: its token loss (-1.1) drops out, the normaliser stays 2 tokens.
  const at::Tensor keep = d2({0, 1, 0, 1, 1, 0}, 2);
  EXPECT_NEAR(gspo_loss(logp, old, A, mask, 0.1, 0.1, keep).loss.item<double>(), -(0.55 - 2 * std::exp(-0.1)) / 2,
              1e-12);
  // The paper's range (3e-4, 4e-4) clips sequence 1 too: min(0.904837·(-2), 0.9997·(-2)) = -1.9994.
  EXPECT_NEAR(gspo_loss(logp, old, A, mask, 3e-4, 4e-4).loss.item<double>(), -(1.0004 - 2 * 0.9997) / 2, 1e-12);
  // An empty sequence: s = 1, and it contributes 0 to the mean over sequences.
  const at::Tensor empty = d2({1, 1, 0, 0, 0, 0}, 2);
  EXPECT_NEAR(values(gspo_sequence_ratio(logp, old, empty))[1], 1.0, 1e-15);
  EXPECT_NEAR(gspo_loss(logp, old, A, empty, 0.1, 0.1).loss.item<double>(), -1.1 / 2, 1e-12);
}

TEST(OffPolicyGspo, GradientMatchesFiniteDifferencesOfTheSequenceObjective) {
  at::manual_seed(1);
  const at::Tensor logp0 = at::randn({3, 4}, at::kDouble) * 0.3;
  const at::Tensor old = logp0 + at::randn({3, 4}, at::kDouble) * 0.1;
  const at::Tensor A = d({1.3, -0.7, -2.0});
  const at::Tensor mask = d2({1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0}, 3);
  const at::Tensor keep = d2({1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0}, 3);
  // A range that clips some sequences and not others: both branches' gradients are checked.
  const auto s = values(gspo_sequence_ratio(logp0, old, mask));
  int clipped = 0;
  for (double v : s) clipped += (v < 0.95 || v > 1.05) ? 1 : 0;
  ASSERT_GT(clipped, 0);
  ASSERT_LT(clipped, 3);
  expect_gradient_matches_finite_differences(
      logp0, [&](const at::Tensor& logp) { return gspo_loss(logp, old, A, mask, 0.05, 0.05).loss; });
  // A token keep-mask removes the masked tokens' terms of the GSPO-token gradient, each token's being
  // −A_i·sg[s_i]/(B·|y_i|) (0 where clipped): the gradient with keep is the one without times keep.
  at::Tensor all = logp0.clone().requires_grad_(true), kept = logp0.clone().requires_grad_(true);
  gspo_loss(all, old, A, mask, 0.05, 0.05).loss.backward();
  gspo_loss(kept, old, A, mask, 0.05, 0.05, keep).loss.backward();
  EXPECT_LT((kept.grad() - all.grad() * keep).abs().max().item<double>(), 1e-15);
  EXPECT_GT((kept.grad() - all.grad()).abs().max().item<double>(), 1e-3);
}

TEST(OffPolicyMis, TokenSequenceGeometricByHand) {
  const double l2 = std::log(2.0), l3 = std::log(3.0);
  // log ρ = old_logp − rollout_logp (rollout 0). Thresholds [0.5, 2].
  //  seq 0: [ln2, ln3, 0]            token: [1, 0, 1]; sequence: ln6 > ln2 -> 0; geometric: ln6/3 -> 1.82 -> 1
  //  seq 1: [ln2, ln2, (mask 0) 100] token: [1, 1, 0]; sequence: ln4 -> 0; geometric: ln2, on the threshold -> 1
  //  seq 2: [-ln2, 0, (mask 0) -100] token: [1, 1, 0]; sequence: -ln2, on the threshold -> 1; geometric -> 1
  //  seq 3: empty (mask 0, log ρ 50) every level: 0
  const at::Tensor old = d2({l2, l3, 0, l2, l2, 100, -l2, 0, -100, 50, 50, 50}, 4);
  const at::Tensor rollout = at::zeros_like(old);
  const at::Tensor mask = d2({1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0}, 4);
  EXPECT_EQ(values(mis_keep(old, rollout, mask, MisLevel::kToken, 0.5, 2.0)),
            std::vector<double>({1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(values(mis_keep(old, rollout, mask, MisLevel::kSequence, 0.5, 2.0)),
            std::vector<double>({0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(values(mis_keep(old, rollout, mask, MisLevel::kGeometric, 0.5, 2.0)),
            std::vector<double>({1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(values(mis_keep(old, rollout, mask, MisLevel::kOff, 0.5, 2.0)), values(mask));
  // Exactly on the upper threshold of the sequence level: seq 1's ln4 is kept with high = 4.
  EXPECT_EQ(values(mis_keep(old, rollout, mask, MisLevel::kSequence, 0.25, 4.0))[3], 1.0);
  EXPECT_EQ(parse_mis_level("geometric"), MisLevel::kGeometric);
  EXPECT_THROW(parse_mis_level("tokens"), InputError);
}

TEST(OffPolicyIcePop, KeepsRatiosInsideOneOverBetaToBeta) {
  const double l3 = std::log(3.0), l35 = std::log(3.5);
  // β = 3: ratios 3 and 1/3 sit on the bounds (kept), 3.5 and 1/3.5 fall outside, 1 inside; the
  // mask-0 token with ratio e^10 keeps 0.
  const at::Tensor old = d2({l3, -l3, l35, -l35, 0.0, 10.0}, 1);
  const at::Tensor rollout = at::zeros_like(old);
  const at::Tensor mask = d2({1, 1, 1, 1, 1, 0}, 1);
  EXPECT_EQ(values(icepop_keep(old, rollout, mask, 3.0)), std::vector<double>({1, 1, 0, 0, 1, 0}));
  // The ratio is π_old/μ: the same gap the other way round (rollout above old) masks the same tokens.
  EXPECT_EQ(values(icepop_keep(rollout, old, mask, 3.0)), std::vector<double>({1, 1, 0, 0, 1, 0}));
}

TEST(OffPolicyMask, DropsNegativeAdvantageSequencesFarFromTheRollout) {
  // δ = 0.1; per sequence the mean of rollout_logp − old_logp over its counted tokens:
  //  seq 0: A -1, [0.2, 0.0] -> 0.1, on δ: kept
  //  seq 1: A -1, [0.3, 0.1] -> 0.2 > δ: dropped
  //  seq 2: A +1, [0.3, 0.1] -> 0.2 > δ but a positive advantage: kept
  //  seq 3: A -1, [0.0, 0.0] and a mask-0 token 5.0 (ignored) -> 0: kept
  //  seq 4: A -1, empty: keeps nothing
  const at::Tensor rollout = d2({0.2, 0.0, 0, 0.3, 0.1, 0, 0.3, 0.1, 0, 0.0, 0.0, 5.0, 9, 9, 9}, 5);
  const at::Tensor old = at::zeros_like(rollout);
  const at::Tensor mask = d2({1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0}, 5);
  const at::Tensor A = d({-1, -1, 1, -1, -1});
  EXPECT_EQ(values(offpolicy_sequence_keep(old, rollout, A, mask, 0.1)),
            std::vector<double>({1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0}));
  // δ = 0 drops every negative-advantage sequence whose rollout log-probs are above the trainer's.
  EXPECT_EQ(values(offpolicy_sequence_keep(old, rollout, A, mask, 0.0)),
            std::vector<double>({0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0}));
}

TEST(OffPolicyKeep, ProductOfTheMasksThatAreOn) {
  const double l3 = std::log(3.0);
  // log ρ: seq 0 [ln3, 0] (A -1), seq 1 [-0.3, -0.3] (A -1; mean rollout − old = 0.3 > δ 0.2).
  const at::Tensor old = d2({l3, 0, -0.3, -0.3}, 2);
  const at::Tensor rollout = at::zeros_like(old);
  const at::Tensor mask = at::ones_like(old);
  const at::Tensor A = d({-1, -1});
  OffPolicyOptions o;
  EXPECT_EQ(values(off_policy_keep(o, old, rollout, A, mask)), std::vector<double>({1, 1, 1, 1}));
  o.mis = MisLevel::kToken;  // [0.5, 2]: ln3 out
  EXPECT_EQ(values(off_policy_keep(o, old, rollout, A, mask)), std::vector<double>({0, 1, 1, 1}));
  o.offpolicy_mask_delta = 0.2;
  EXPECT_EQ(values(off_policy_keep(o, old, rollout, A, mask)), std::vector<double>({0, 1, 0, 0}));
  o.mis = MisLevel::kOff;
  o.icepop_beta = 4;  // ln3 inside [1/4, 4]
  EXPECT_EQ(values(off_policy_keep(o, old, rollout, A, mask)), std::vector<double>({1, 1, 0, 0}));
}

TEST(OffPolicyKl, UnbiasedEstimateByHandAndItsGradient) {
  // Token 0: π_θ = 0.5, π_old = 0.25, π_ref = 0.25: ratio 2, π_ref/π_θ = 0.5,
  //   k3 = 0.5 − ln 0.5 − 1 = ln2 − 0.5, D = 2·(ln2 − 0.5) = 0.386294.
  // Token 1: π_θ = π_old, log(π_ref/π_θ) = 1: D = k3 = e − 2.
  const at::Tensor logp = d2({std::log(0.5), -1.0}, 1);
  const at::Tensor old = d2({std::log(0.25), -1.0}, 1);
  const at::Tensor ref = d2({std::log(0.25), 0.0}, 1);
  const auto v = values(unbiased_kl(logp, old, ref));
  EXPECT_NEAR(v[0], 2 * (std::log(2.0) - 0.5), 1e-12);
  EXPECT_NEAR(v[1], std::exp(1.0) - 2, 1e-12);
  // At π_θ = π_old its gradient is log(π_θ/π_ref) (the KL's score-function term), where plain k3's is
  // 1 − π_ref/π_θ: token 1 gives -1 against 1 − e.
  at::Tensor x = logp.clone().requires_grad_(true);
  unbiased_kl(x, old, ref).sum().backward();
  EXPECT_NEAR(values(x.grad())[1], -1.0, 1e-12);
  at::manual_seed(2);
  const at::Tensor logp0 = at::randn({2, 3}, at::kDouble) * 0.5;
  const at::Tensor old2 = logp0 + at::randn({2, 3}, at::kDouble) * 0.2;
  const at::Tensor ref2 = logp0 + at::randn({2, 3}, at::kDouble) * 0.4;
  expect_gradient_matches_finite_differences(logp0, [&](const at::Tensor& lp) {
    return (unbiased_kl(lp, old2, ref2) * d({1.0, 2.0, 3.0}).unsqueeze(0)).sum();
  });
}

TEST(OffPolicyMismatch, MeasuresOverCountedTokensByHand) {
  // Δ = old − rollout: seq 0 [0.1, -0.3, (mask 0) 9], seq 1 [0.2, 0, (mask 0) -9]; A = [-1, 1].
  // mean |Δ| = (0.1 + 0.3 + 0.2 + 0) / 4 = 0.15, max 0.3;
  // k3 = Σ(e^Δ − 1 − Δ)/4; TIS cap 1.2 (ln 1.2 = 0.182): truncates 0.2 -> 1/4;
  // MIS token [0.8, 1.25] (ln: [-0.223, 0.223]): masks -0.3 -> 1/4; IcePop β = 1.1 (±0.0953):
  // masks 0.1, -0.3, 0.2 -> 3/4; off-policy δ = 0.05: seq 0 (A < 0) has mean rollout − old = 0.1 -> 2/4.
  const at::Tensor old = d2({0.1, -0.3, 9, 0.2, 0, -9}, 2);
  const at::Tensor rollout = at::zeros_like(old);
  const at::Tensor mask = d2({1, 1, 0, 1, 1, 0}, 2);
  const at::Tensor A = d({-1, 1});
  OffPolicyOptions o;
  auto m = measure_mismatch(old, rollout, A, mask, o, 0);
  EXPECT_EQ(m.size(), 3u);  // only the corrections that are on report a share
  EXPECT_NEAR(m.at("logp_abs_mean"), 0.15, 1e-12);
  EXPECT_NEAR(m.at("logp_abs_max"), 0.3, 1e-12);
  double k3 = 0;
  for (double x : {0.1, -0.3, 0.2, 0.0}) k3 += std::exp(x) - 1 - x;
  EXPECT_NEAR(m.at("kl_k3"), k3 / 4, 1e-12);
  o.mis = MisLevel::kToken;
  o.mis_low = 0.8;
  o.mis_high = 1.25;
  o.icepop_beta = 1.1;
  o.offpolicy_mask_delta = 0.05;
  m = measure_mismatch(old, rollout, A, mask, o, 1.2);
  EXPECT_NEAR(m.at("tis_truncated"), 0.25, 1e-12);
  EXPECT_NEAR(m.at("mis_masked"), 0.25, 1e-12);
  EXPECT_NEAR(m.at("icepop_masked"), 0.75, 1e-12);
  EXPECT_NEAR(m.at("offpolicy_masked"), 0.5, 1e-12);
  // No counted token: zeros, not NaN.
  m = measure_mismatch(old, rollout, A, at::zeros_like(mask), o, 1.2);
  for (const auto& [key, value] : m) EXPECT_EQ(value, 0.0) << key;
}

TEST(OffPolicyConfig, ReadsThePapersKeysAndNamesBadValues) {
  const std::string yaml = R"(
trainer:
  policy_loss: gspo
  loss_agg: seq-mean-token-mean
  gspo_clip_low: 0.0003
  gspo_clip_high: 0.0005
  mis: geometric
  mis_low: 0.999
  mis_high: 1.001
  icepop_beta: 5
  offpolicy_mask_delta: 0.1
  kl_unbiased: true
)";
  const OffPolicyOptions o = trainer_options_from_config(Config::parse(yaml, "run.yaml").sub("trainer")).off_policy;
  EXPECT_EQ(o.policy_loss, PolicyLossKind::kGspo);
  EXPECT_EQ(o.gspo_clip_low, 3e-4);
  EXPECT_EQ(o.gspo_clip_high, 5e-4);
  EXPECT_EQ(o.mis, MisLevel::kGeometric);
  EXPECT_EQ(o.mis_low, 0.999);
  EXPECT_EQ(o.mis_high, 1.001);
  EXPECT_EQ(o.icepop_beta, 5);
  EXPECT_EQ(o.offpolicy_mask_delta, 0.1);
  EXPECT_TRUE(o.kl_unbiased);
  // Defaults: everything off, PPO.
  const OffPolicyOptions off =
      trainer_options_from_config(Config::parse("trainer: {}", "run.yaml").sub("trainer")).off_policy;
  EXPECT_EQ(off.policy_loss, PolicyLossKind::kPpo);
  EXPECT_EQ(off.mis, MisLevel::kOff);
  EXPECT_EQ(off.icepop_beta, 0);
  EXPECT_FALSE(off.offpolicy_mask_on());
  EXPECT_FALSE(off.kl_unbiased);
  EXPECT_FALSE(
      trainer_options_from_config(Config::parse("trainer: {offpolicy_mask_delta: off}", "run.yaml").sub("trainer"))
          .off_policy.offpolicy_mask_on());
  EXPECT_TRUE(
      trainer_options_from_config(Config::parse("trainer: {offpolicy_mask_delta: 0}", "run.yaml").sub("trainer"))
          .off_policy.offpolicy_mask_on());

  auto error_of = [&](const std::string& override_text) {
    return grpo::testing::trainer_options_error(yaml, override_text);
  };
  EXPECT_EQ(error_of("trainer.mis=tokens"),
            "run.yaml: key 'trainer.mis': masked importance sampling level 'tokens': expected one of off, token, "
            "sequence, geometric");
  EXPECT_EQ(error_of("trainer.policy_loss=grpo"),
            "run.yaml: key 'trainer.policy_loss': policy loss 'grpo': expected one of ppo, gspo");
  EXPECT_NE(error_of("trainer.mis_low=1.5").find("key 'trainer.mis_high': expected >= mis_low (1.5"),
            std::string::npos);
  EXPECT_NE(error_of("trainer.mis_low=0").find("key 'trainer.mis_low': expected > 0"), std::string::npos);
  EXPECT_EQ(error_of("trainer.icepop_beta=0.5"), "run.yaml: key 'trainer.icepop_beta': expected > 1 (or 0 to disable)");
  EXPECT_EQ(error_of("trainer.icepop_beta=1"), "run.yaml: key 'trainer.icepop_beta': expected > 1 (or 0 to disable)");
  EXPECT_EQ(error_of("trainer.offpolicy_mask_delta=-0.1"),
            "run.yaml: key 'trainer.offpolicy_mask_delta': expected off or a number >= 0");
  EXPECT_NE(error_of("trainer.offpolicy_mask_delta=on").find("key 'trainer.offpolicy_mask_delta'"), std::string::npos);
  EXPECT_NE(error_of("trainer.gspo_clip_low=1").find("key 'trainer.gspo_clip_low': expected a number in [0, 1)"),
            std::string::npos);
  EXPECT_NE(error_of("trainer.gspo_clip_high=-0.1").find("key 'trainer.gspo_clip_high'"), std::string::npos);
  EXPECT_NE(error_of("trainer.loss_agg=token-mean").find("key 'trainer.loss_agg': policy_loss gspo averages"),
            std::string::npos);
  EXPECT_NE(error_of("trainer.tis_cap=2").find("key 'trainer.tis_cap'"), std::string::npos);
  EXPECT_NE(error_of("trainer.kl_in_reward=true").find("key 'trainer.kl_unbiased'"), std::string::npos);
  EXPECT_NE(error_of("trainer.kl_estimator=k1").find("key 'trainer.kl_unbiased'"), std::string::npos);
  EXPECT_NE(error_of("trainer.kl_unbiased=yes please").find("key 'trainer.kl_unbiased'"), std::string::npos);
}
