// kernels/linear_kn.h and kernels/latent_attention.h: the AVX2 kernels equal their scalar references
// bit for bit over awkward shapes (widths across the 16-column tile, one key, one head, rows across
// the 4-row tile, fp32 and bf16 weights), and agree with float64 to the fp32 rounding bound;
// attention_invariant equals a float64 softmax attention.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <cstring>

#include "kernels/latent_attention.h"
#include "kernels/linear_kn.h"
#include "model/batch_invariant.h"

namespace {

using grpo::kernels::WeightType;

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.numel() * sizeof(float)) == 0;
}

TEST(LinearKn, KernelEqualsScalarReferenceBitForBitAndIsWithinTheFp32Bound) {
  for (WeightType t : {WeightType::kF32, WeightType::kBF16})
    for (int64_t m : {1, 3, 4, 5, 9})
      for (int64_t k : {1, 2, 33, 300})
        for (int64_t n : {1, 15, 16, 17, 40}) {
          at::manual_seed(m * 7 + k * 3 + n);
          const at::Tensor x = at::randn({m, k + 2});  // row stride k + 2: the strided form
          at::Tensor w = at::randn({k, n + 3});        // row stride n + 3
          if (t == WeightType::kBF16) w = w.to(at::kBFloat16).contiguous();
          at::Tensor got = at::full({m, n + 1}, 5.0f), want = at::full({m, n + 1}, 5.0f);
          grpo::kernels::linear_kn(x.data_ptr<float>(), k + 2, m, k, w.data_ptr(), t, n + 3, n, got.data_ptr<float>(),
                                   n + 1);
          grpo::kernels::linear_kn_reference(x.data_ptr<float>(), k + 2, m, k, w.data_ptr(), t, n + 3, n,
                                             want.data_ptr<float>(), n + 1);
          ASSERT_TRUE(bit_equal(got, want)) << "M " << m << " K " << k << " N " << n;
          EXPECT_EQ(got.select(1, n).eq(5.0f).all().item<bool>(), true) << "wrote past the row";
          const at::Tensor x64 = x.narrow(1, 0, k).to(at::kDouble), w64 = w.narrow(1, 0, n).to(at::kDouble);
          const double u = std::ldexp(1.0, -24), gamma = k * u / (1 - k * u);
          const at::Tensor err = (got.narrow(1, 0, n).to(at::kDouble) - x64.mm(w64)).abs();
          EXPECT_LE((err - gamma * x64.abs().mm(w64.abs())).max().item<double>(), 0.0);
        }
}

TEST(LatentAttention, KernelEqualsScalarReferenceBitForBit) {
  for (int64_t heads : {1, 3, 16})
    for (int64_t k : {5, 40, 160})
      for (int64_t count : {1, 7, 17, 100}) {
        const int64_t value_dim = k > 32 ? k - 32 : k;
        at::manual_seed(heads + k + count);
        const at::Tensor q = at::randn({heads, k}), keys = at::randn({count, k});
        at::Tensor got = at::empty({heads, value_dim}), want = at::empty({heads, value_dim});
        std::vector<float> scratch(heads * count);
        grpo::kernels::latent_attention(q.data_ptr<float>(), heads, k, keys.data_ptr<float>(), count, value_dim, 0.125f,
                                        scratch.data(), got.data_ptr<float>());
        grpo::kernels::latent_attention_reference(q.data_ptr<float>(), heads, k, keys.data_ptr<float>(), count,
                                                  value_dim, 0.125f, scratch.data(), want.data_ptr<float>());
        ASSERT_TRUE(bit_equal(got, want)) << "H " << heads << " K " << k << " keys " << count;
      }
}

TEST(LatentAttention, AttentionInvariantMatchesFloat64SoftmaxAttention) {
  at::NoGradGuard no_grad;
  at::manual_seed(8);
  const int64_t b = 2, t = 3, h = 4, k = 48, s = 20, value_dim = 32;
  const at::Tensor query = at::randn({b, t, h, k}), keys = at::randn({b, s, k});
  const at::Tensor slots = at::tensor({5, 6, 7, 17, 18, 19}, at::kLong).view({b, t});
  const double scale = 0.2;
  const at::Tensor got = grpo::attention_invariant(query, keys, slots, value_dim, scale).to(at::kDouble);
  for (int64_t r = 0; r < b; ++r)
    for (int64_t p = 0; p < t; ++p) {
      const int64_t count = slots[r][p].item<int64_t>() + 1;
      const at::Tensor kv = keys[r].narrow(0, 0, count).to(at::kDouble);                     // [count, K]
      const at::Tensor attn = (query[r][p].to(at::kDouble).mm(kv.t()) * scale).softmax(-1);  // [H, count]
      const at::Tensor want = attn.mm(kv.narrow(1, 0, value_dim));                           // [H, value_dim]
      EXPECT_TRUE(at::allclose(got[r][p], want, 1e-5, 1e-5)) << "row " << r << " position " << p;
    }
  EXPECT_THROW(grpo::attention_invariant(query, keys, slots + 10, value_dim, scale), std::exception);
}

}  // namespace
