// kernels/adamw.h: the fused AdamW update and the fp64 sum of squares equal their scalar
// references bit for bit (lengths around the vector width, the parallel grain and the sum's block;
// 1 and 2 threads); the update follows the fp64 AdamW within fp32 rounding over several steps; the
// sum is within fp64 rounding of LibTorch's. (learner/optim.h's AdamW over it: learner_optim_test.)
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/adamw.h"

namespace {

using grpo::kernels::AdamWStep;

const int64_t kLengths[] = {0, 1, 7, 8, 9, 63, 1000, (1 << 15) + 5, 3 * grpo::kernels::kSumSquaresBlock + 17};

std::vector<float> random_floats(int64_t n, double scale, uint64_t seed) {
  at::Tensor t = at::randn({n}, at::make_generator<at::CPUGeneratorImpl>(seed), at::kFloat) * scale;
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + n);
}

uint64_t bits_of(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST(AdamWKernel, EqualsTheReferenceBitForBitOverLengthsAndThreads) {
  const AdamWStep steps[] = {{1e-3, 0.9, 0.999, 1e-8, 0.0, 1}, {3e-2, 0.9, 0.95, 1e-6, 0.1, 7}};
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    for (int64_t n : kLengths) {
      for (const AdamWStep& s : steps) {
        SCOPED_TRACE("n " + std::to_string(n) + ", threads " + std::to_string(threads) + ", step " +
                     std::to_string(s.step));
        const std::vector<float> g = random_floats(n, 1e-2, 1);
        std::vector<float> p = random_floats(n, 1.0, 2), m = random_floats(n, 1e-3, 3), v = random_floats(n, 1e-4, 4);
        for (float& x : v) x = x * x;  // second moments are >= 0
        std::vector<float> rp = p, rm = m, rv = v;
        grpo::kernels::adamw_update(p.data(), g.data(), m.data(), v.data(), n, s);
        grpo::kernels::adamw_update_reference(rp.data(), g.data(), rm.data(), rv.data(), n, s);
        EXPECT_TRUE(same_bits(p, rp));
        EXPECT_TRUE(same_bits(m, rm));
        EXPECT_TRUE(same_bits(v, rv));
        const double sum = grpo::kernels::sum_squares(g.data(), n);
        const double ref = grpo::kernels::sum_squares_reference(g.data(), n);
        EXPECT_EQ(bits_of(sum), bits_of(ref)) << sum << " vs " << ref;
        if (n > 0) {
          const double torch_sum =
              at::from_blob(const_cast<float*>(g.data()), {n}, at::kFloat).to(at::kDouble).pow(2).sum().item<double>();
          EXPECT_NEAR(sum, torch_sum, 1e-12 * torch_sum);
        }
      }
    }
  }
  at::set_num_threads(1);
}

// Ten steps of the fp32 kernel against the same ten in fp64 (LibTorch ops on doubles): the fp32
// update stays within fp32 rounding of the exact one.
TEST(AdamWKernel, FollowsTheFp64UpdateWithinFp32Rounding) {
  const int64_t n = 4099;
  std::vector<float> p = random_floats(n, 1.0, 5), m(n, 0.0f), v(n, 0.0f);
  at::Tensor p64 = at::from_blob(p.data(), {n}, at::kFloat).to(at::kDouble), m64 = at::zeros({n}, at::kDouble),
             v64 = at::zeros({n}, at::kDouble);
  for (int64_t t = 1; t <= 10; ++t) {
    const AdamWStep s{2e-2, 0.9, 0.95, 1e-8, 0.05, t};
    const std::vector<float> g = random_floats(n, 1e-1, 100 + t);
    grpo::kernels::adamw_update(p.data(), g.data(), m.data(), v.data(), n, s);
    const at::Tensor g64 = at::from_blob(const_cast<float*>(g.data()), {n}, at::kFloat).to(at::kDouble);
    p64.mul_(1 - s.lr * s.weight_decay);
    m64.mul_(s.beta1).add_(g64, 1 - s.beta1);
    v64.mul_(s.beta2).addcmul_(g64, g64, 1 - s.beta2);
    const double bc1 = 1 - std::pow(s.beta1, double(t)), bc2 = 1 - std::pow(s.beta2, double(t));
    p64.addcdiv_(m64, (v64 / bc2).sqrt_().add_(s.eps), -s.lr / bc1);
  }
  const at::Tensor got = at::from_blob(p.data(), {n}, at::kFloat).to(at::kDouble);
  EXPECT_LT((got - p64).abs().max().item<double>(), 1e-5);
  EXPECT_GT((got - p64).abs().max().item<double>(), 0) << "the fp32 update cannot be exact";
}

}  // namespace
