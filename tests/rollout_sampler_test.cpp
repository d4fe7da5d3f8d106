// The sampler: the counter-based generator, greedy choice, the empirical distribution against
// softmax(logits / T) with top-k / top-p truncation (chi-square, fixed seed), and the reported
// log-probs of the distribution each token was drawn from.
#include <gtest/gtest.h>

#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "rollout/sampler.h"

using namespace grpo;
using namespace grpo::rollout;

namespace {

const std::vector<double> kLogits = {2.0, 1.7, 1.5, 1.5, 0.9, 0.3, 0.0, -0.4, -1.0, -2.5, 0.8, 1.1};

// softmax(logits / T) in float64, then HF-order top-k and top-p, renormalised.
std::vector<double> expected_probs(const SamplingParams& p) {
  const size_t v = kLogits.size();
  std::vector<double> z(v);
  double mx = -1e300;
  for (size_t i = 0; i < v; ++i) mx = std::max(mx, kLogits[i] / p.temperature);
  double sum = 0;
  for (size_t i = 0; i < v; ++i) sum += z[i] = std::exp(kLogits[i] / p.temperature - mx);
  for (double& x : z) x /= sum;
  std::vector<size_t> order(v);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return z[a] > z[b]; });
  std::vector<bool> keep(v, true);
  if (p.top_k > 0)
    for (size_t r = 0; r < v; ++r) keep[order[r]] = z[order[r]] >= z[order[p.top_k - 1]];
  double kept_mass = 0;
  for (size_t i = 0; i < v; ++i) kept_mass += keep[i] ? z[i] : 0;
  double before = 0;
  for (size_t r = 0; r < v; ++r) {
    size_t i = order[r];
    if (!keep[i]) continue;
    if (!(before < p.top_p * kept_mass)) keep[i] = false;
    before += z[i];
  }
  double mass = 0;
  for (size_t i = 0; i < v; ++i) mass += keep[i] ? z[i] : 0;
  for (size_t i = 0; i < v; ++i) z[i] = keep[i] ? z[i] / mass : 0;
  return z;
}

// Draws `n` tokens from kLogits (sample indices 0..n-1, step 3) and checks the counts with a
// chi-square test at p = 1e-6, the log-probs against the expected distribution, and that no
// truncated token is ever drawn.
void check_distribution(const SamplingParams& p, int64_t n) {
  const int64_t v = static_cast<int64_t>(kLogits.size());
  at::Tensor logits = at::tensor(kLogits, at::kDouble).to(at::kFloat).unsqueeze(0).expand({n, v});
  std::vector<SampleRow> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back({&p, static_cast<uint64_t>(i), 3});
  std::vector<Draw> draws = sample_tokens(logits, rows);
  std::vector<double> want = expected_probs(p);
  std::vector<int64_t> counts(v, 0);
  for (const Draw& d : draws) {
    ASSERT_GE(d.token, 0);
    ASSERT_LT(d.token, v);
    ASSERT_GT(want[d.token], 0) << "token " << d.token << " is outside the kept set";
    EXPECT_NEAR(d.logprob, std::log(want[d.token]), 1e-5);
    ++counts[d.token];
  }
  double chi2 = 0;
  int dof = -1;
  for (int64_t i = 0; i < v; ++i) {
    if (want[i] == 0) continue;
    const double e = want[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++dof;
  }
  ASSERT_GE(dof, 1);
  const double p_value = boost::math::cdf(boost::math::complement(boost::math::chi_squared(dof), chi2));
  std::cout << "T=" << p.temperature << " top_k=" << p.top_k << " top_p=" << p.top_p << ": chi2 " << chi2 << " (dof "
            << dof << "), p = " << p_value << "\n";
  EXPECT_GT(p_value, 1e-6);
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmaxWithTruncation) {
  check_distribution({1.0, 1.0, 0, 17}, 40000);  // plain softmax: inverse CDF in vocabulary order
  check_distribution({0.7, 1.0, 0, 18}, 40000);  // temperature
  check_distribution({1.3, 1.0, 5, 19}, 40000);  // top-k (the tie at rank 3/4 is inside)
  check_distribution({1.0, 0.8, 0, 20}, 40000);  // top-p
  check_distribution({0.9, 0.6, 6, 21}, 40000);  // both
  check_distribution({1.0, 1.0, 3, 22}, 40000);  // top-k ending inside the 1.5/1.5 tie: both kept
}

TEST(Sampler, ChiSquareRejectsAWrongDistribution) {
  // The test has power: draws at T = 1 compared with T = 0.9 expectations fail it.
  SamplingParams p{1.0, 1.0, 0, 5};
  const int64_t n = 40000, v = static_cast<int64_t>(kLogits.size());
  at::Tensor logits = at::tensor(kLogits, at::kDouble).to(at::kFloat).unsqueeze(0).expand({n, v});
  std::vector<SampleRow> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back({&p, static_cast<uint64_t>(i), 0});
  std::vector<int64_t> counts(v, 0);
  for (const Draw& d : sample_tokens(logits, rows)) ++counts[d.token];
  std::vector<double> wrong = expected_probs({0.9, 1.0, 0, 0});
  double chi2 = 0;
  for (int64_t i = 0; i < v; ++i) chi2 += std::pow(counts[i] - wrong[i] * n, 2) / (wrong[i] * n);
  EXPECT_LT(boost::math::cdf(boost::math::complement(boost::math::chi_squared(v - 1), chi2)), 1e-6);
}

TEST(Sampler, GreedyIsArgmaxWithTheModelsLogprob) {
  at::Tensor logits = at::randn({5, 40});
  SamplingParams g{0.0, 0.3, 2, 0};  // truncation is irrelevant at T = 0
  std::vector<SampleRow> rows(5, SampleRow{&g, 0, 0});
  std::vector<Draw> d = sample_tokens(logits, rows);
  at::Tensor lp = logits.log_softmax(-1);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(d[i].token, logits[i].argmax().item<int64_t>());
    EXPECT_FLOAT_EQ(d[i].logprob, lp[i][d[i].token].item<float>());
  }
}

TEST(Sampler, DrawsDependOnlyOnTheirOwnRowAndKey) {
  at::Tensor logits = at::randn({6, 300});
  SamplingParams a{1.0, 1.0, 0, 7}, b{0.8, 0.9, 40, 8}, g{0, 1, 0, 0};
  std::vector<SampleRow> rows = {{&a, 0, 0}, {&b, 1, 4}, {&g, 0, 0}, {&a, 3, 9}, {&b, 2, 1}, {&a, 5, 2}};
  std::vector<Draw> together = sample_tokens(logits, rows);
  for (int64_t i = 0; i < 6; ++i) {  // each row alone, and in the reverse batch order
    std::vector<Draw> alone = sample_tokens(logits.narrow(0, i, 1), {rows[i]});
    EXPECT_EQ(alone[0].token, together[i].token);
    EXPECT_EQ(alone[0].logprob, together[i].logprob);
  }
  std::vector<SampleRow> reversed(rows.rbegin(), rows.rend());
  std::vector<Draw> rev = sample_tokens(logits.flip(0), reversed);
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(rev[5 - i].token, together[i].token);
}

TEST(Sampler, CounterUniformIsAFunctionOfItsKey) {
  EXPECT_EQ(counter_uniform(1, 2, 3), counter_uniform(1, 2, 3));
  EXPECT_NE(counter_uniform(1, 2, 3), counter_uniform(1, 2, 4));
  EXPECT_NE(counter_uniform(1, 2, 3), counter_uniform(1, 3, 3));
  EXPECT_NE(counter_uniform(1, 2, 3), counter_uniform(2, 2, 3));
  EXPECT_NE(counter_uniform(1, 1ull << 32, 0), counter_uniform(1, 0, 0));  // high halves count
  // Uniform on [0, 1): mean, variance and a 20-bin chi-square over 100k consecutive steps.
  const int n = 100000;
  std::vector<int> bins(20, 0);
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    double u = counter_uniform(42, 7, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sq += u * u;
    ++bins[static_cast<int>(u * 20)];
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NEAR(sq / n - std::pow(sum / n, 2), 1.0 / 12, 0.002);
  double chi2 = 0;
  for (int c : bins) chi2 += std::pow(c - n / 20.0, 2) / (n / 20.0);
  EXPECT_GT(boost::math::cdf(boost::math::complement(boost::math::chi_squared(19), chi2)), 1e-6);
}

TEST(Sampler, BadParamsNameTheField) {
  auto message = [](SamplingParams p) {
    try {
      validate_sampling(p);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message({-0.5, 1, 0, 0}).rfind("temperature:", 0), 0u);
  EXPECT_EQ(message({NAN, 1, 0, 0}).rfind("temperature:", 0), 0u);
  EXPECT_EQ(message({1, 0, 0, 0}).rfind("top_p:", 0), 0u);
  EXPECT_EQ(message({1, 1.5, 0, 0}).rfind("top_p:", 0), 0u);
  EXPECT_EQ(message({1, 1, -1, 0}).rfind("top_k:", 0), 0u);
  EXPECT_EQ(message({0, 1, 0, 0}), "");
}

}  // namespace
