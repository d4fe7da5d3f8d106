// kernels/linear_dot.h: the AVX2 kernel equals its scalar reference bit for bit over awkward shapes
// (one row, tails of K and N that are not multiples of the vector width or tile), fp32 and bf16
// weights, 1 and 2 threads; each row equals the same row computed alone (batch invariance); the
// result is within the fp32 dot-product error bound of a float64 product; linear_invariant routes
// fp32/bf16 no-grad products through it.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cstring>
#include <vector>

#include "kernels/linear_dot.h"
#include "model/batch_invariant.h"
#include "model/fp8.h"

namespace {

using grpo::kernels::linear_dot;
using grpo::kernels::linear_dot_reference;
using grpo::kernels::WeightType;

struct Case {
  int64_t m, k, n;
};

// Shapes around the kernel's boundaries: K tails (mod 8), tiles of 3 rows × 4 outputs, blocks of
// 48 rows × 64 outputs, one row, empty products.
std::vector<Case> awkward_cases() {
  std::vector<Case> cases;
  for (int64_t m : {1, 2, 3, 4, 5, 47, 49, 100})
    for (int64_t k : {1, 7, 8, 9, 17, 130})
      for (int64_t n : {1, 3, 5, 63, 65}) cases.push_back({m, k, n});
  cases.push_back({0, 16, 8});
  cases.push_back({4, 0, 8});
  cases.push_back({3, 512, 1000});  // a real projection shape
  return cases;
}

// Weights as the kernel reads them: fp32, or bf16 bits.
at::Tensor weights(const Case& c, WeightType t, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor w = at::randn({c.n, c.k}) * 0.5;
  return t == WeightType::kF32 ? w.contiguous() : w.to(at::kBFloat16).contiguous();
}

// y = x·wᵀ through `f` (linear_dot or its reference), [m, n] fp32.
template <typename F>
at::Tensor run(F f, const at::Tensor& x, const at::Tensor& w, WeightType t) {
  at::Tensor y = at::full({x.size(0), w.size(0)}, 12345.0f);  // overwritten
  f(x.data_ptr<float>(), x.size(0), x.size(1), w.data_ptr(), t, w.size(0), y.data_ptr<float>());
  return y;
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.numel() * sizeof(float)) == 0;
}

class LinearDot : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    threads_ = at::get_num_threads();
    at::set_num_threads(GetParam());
    if (!grpo::kernels::linear_dot_uses_avx2())
      std::cout << "note: this CPU has no AVX2+FMA; linear_dot runs the scalar reference\n";
  }
  void TearDown() override { at::set_num_threads(threads_); }
  int threads_ = 1;
};

TEST_P(LinearDot, KernelEqualsScalarReferenceBitForBit) {
  for (WeightType t : {WeightType::kF32, WeightType::kBF16})
    for (const Case& c : awkward_cases()) {
      at::manual_seed(c.m * 1000 + c.k * 10 + c.n);
      const at::Tensor x = at::randn({c.m, c.k});
      const at::Tensor w = weights(c, t, 7);
      const at::Tensor got = run(linear_dot, x, w, t), want = run(linear_dot_reference, x, w, t);
      EXPECT_TRUE(bit_equal(got, want)) << "M " << c.m << " K " << c.k << " N " << c.n << " bf16 "
                                        << (t == WeightType::kBF16) << ": max |Δ| "
                                        << (c.m * c.n ? (got - want).abs().max().item<float>() : 0.0f);
      if (c.k == 0 && c.m * c.n > 0) EXPECT_EQ(got.abs().max().item<float>(), 0.0f);
    }
}

TEST_P(LinearDot, EveryRowEqualsTheRowComputedAlone) {
  const Case c{61, 130, 67};
  for (WeightType t : {WeightType::kF32, WeightType::kBF16}) {
    at::manual_seed(3);
    const at::Tensor x = at::randn({c.m, c.k}), w = weights(c, t, 4);
    const at::Tensor all = run(linear_dot, x, w, t);
    for (int64_t r = 0; r < c.m; ++r) {
      const at::Tensor alone = run(linear_dot, x.narrow(0, r, 1).contiguous(), w, t);
      ASSERT_TRUE(bit_equal(alone, all.narrow(0, r, 1).contiguous())) << "row " << r;
    }
    // And inside other batch sizes: rows 5.. of a slice starting at row 5.
    const at::Tensor tail = run(linear_dot, x.narrow(0, 5, 20).contiguous(), w, t);
    EXPECT_TRUE(bit_equal(tail, all.narrow(0, 5, 20).contiguous()));
  }
}

// |y − y64| ≤ γ_K · Σ_k |x_k w_k|, γ_K = K·u / (1 − K·u), u = 2⁻²⁴ (Higham, any summation order
// with single-rounding fma is within it).
TEST_P(LinearDot, WithinTheFp32DotProductBoundOfAFloat64Product) {
  for (WeightType t : {WeightType::kF32, WeightType::kBF16})
    for (const Case& c : {Case{5, 1000, 33}, Case{2, 4099, 9}, Case{64, 96, 70}}) {
      at::manual_seed(c.k);
      const at::Tensor x = at::randn({c.m, c.k}), w = weights(c, t, 9);
      const at::Tensor y = run(linear_dot, x, w, t).to(at::kDouble);
      const at::Tensor x64 = x.to(at::kDouble), w64 = w.to(at::kDouble);
      const at::Tensor exact = x64.mm(w64.t()), magnitude = x64.abs().mm(w64.abs().t());
      const double u = std::ldexp(1.0, -24), gamma = c.k * u / (1 - c.k * u);
      const at::Tensor excess = (y - exact).abs() - gamma * magnitude;
      EXPECT_LE(excess.max().item<double>(), 0.0) << "M " << c.m << " K " << c.k << " N " << c.n;
    }
}

INSTANTIATE_TEST_SUITE_P(Threads, LinearDot, ::testing::Values(1, 2));

TEST(LinearInvariant, NoGradFp32AndBf16GoThroughTheDotKernel) {
  at::NoGradGuard no_grad;
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 7, 96}), w = at::randn({40, 96});
  const at::Tensor want = run(linear_dot_reference, x.reshape({14, 96}).contiguous(), w, WeightType::kF32);
  EXPECT_TRUE(bit_equal(grpo::linear_invariant(x, w).reshape({14, 40}).contiguous(), want));
  // bf16 weights under fp32 activations are read as they are (widening is exact).
  const at::Tensor wb = w.to(at::kBFloat16);
  const at::Tensor want_b = run(linear_dot_reference, x.reshape({14, 96}).contiguous(), wb, WeightType::kBF16);
  EXPECT_TRUE(bit_equal(grpo::linear_invariant(x, wb).reshape({14, 40}).contiguous(), want_b));
  // bf16 activations: fp32 accumulation, one rounding to bf16 at the end.
  const at::Tensor xb = x.to(at::kBFloat16);
  const at::Tensor yb = grpo::linear_invariant(xb, wb);
  ASSERT_EQ(yb.scalar_type(), at::kBFloat16);
  const at::Tensor want_xb =
      run(linear_dot_reference, xb.reshape({14, 96}).to(at::kFloat).contiguous(), wb, WeightType::kBF16);
  EXPECT_TRUE(at::equal(yb.reshape({14, 40}), want_xb.to(at::kBFloat16)));
}

TEST(LinearInvariant, GradientsStillFlowUnderGradMode) {
  at::manual_seed(6);
  const at::Tensor x = at::randn({3, 16}).requires_grad_(), w = at::randn({5, 16}).requires_grad_();
  grpo::linear_invariant(x, w).sum().backward();
  ASSERT_TRUE(x.grad().defined() && w.grad().defined());
  EXPECT_TRUE(at::allclose(x.grad(), w.sum(0).expand({3, 16})));
  EXPECT_TRUE(at::allclose(w.grad(), x.detach().sum(0).expand({5, 16})));
}

}  // namespace

namespace {

// FP8 weights: e4m3 codes + 128×128 block scales, as model/fp8.h quantises them.
struct Fp8Weights {
  at::Tensor codes, scales, dequantized;  // [N, K] e4m3, [ceil(N/128), ceil(K/128)] fp32, [N, K] fp32
};

Fp8Weights fp8_weights(int64_t n, int64_t k, uint64_t seed, double magnitude = 0.1) {
  at::manual_seed(seed);
  const grpo::Fp8Blocks b = grpo::quantize_fp8_blocks(at::randn({n, k}) * magnitude);
  return {b.q, b.scale, grpo::dequantize_fp8_blocks(b.q, b.scale).to(at::kFloat).contiguous()};
}

at::Tensor run_fp8(bool reference, const at::Tensor& x, const Fp8Weights& w) {
  at::Tensor y = at::full({x.size(0), w.codes.size(0)}, 9.0f);
  (reference ? grpo::kernels::linear_dot_fp8_reference : grpo::kernels::linear_dot_fp8)(
      x.data_ptr<float>(), x.size(0), x.size(1), static_cast<const uint8_t*>(w.codes.data_ptr()),
      w.scales.data_ptr<float>(), w.codes.size(0), y.data_ptr<float>());
  return y;
}

TEST(LinearDotFp8, EveryE4m3CodeDecodesExactly) {
  // All 256 codes through the kernel: one input, weights = the codes with unit scales, K = 1.
  const at::Tensor codes = at::arange(256, at::kInt).to(at::kByte).view(at::kFloat8_e4m3fn).view({256, 1});
  const at::Tensor want = codes.to(at::kFloat).view({1, 256});
  const at::Tensor x = at::ones({1, 1}), scales = at::ones({2, 1});
  at::Tensor y = at::empty({1, 256});
  grpo::kernels::linear_dot_fp8(x.data_ptr<float>(), 1, 1, static_cast<const uint8_t*>(codes.data_ptr()),
                                scales.data_ptr<float>(), 256, y.data_ptr<float>());
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;  // NaN codes: never written by the quantiser
    EXPECT_EQ(y[0][c].item<float>(), want[0][c].item<float>()) << "code " << c;
  }
}

TEST(LinearDotFp8, KernelEqualsReferenceAndTheDequantisedFp32Product) {
  for (const Case& c : {Case{1, 130, 5}, Case{3, 256, 129}, Case{7, 300, 260}, Case{50, 128, 64}, Case{2, 9, 3}}) {
    const Fp8Weights w = fp8_weights(c.n, c.k, c.k + c.n);
    at::manual_seed(c.m);
    const at::Tensor x = at::randn({c.m, c.k});
    const at::Tensor got = run_fp8(false, x, w);
    EXPECT_TRUE(bit_equal(got, run_fp8(true, x, w))) << "M " << c.m << " K " << c.k << " N " << c.n;
    // The codes read directly equal the fp32 kernel on model/fp8.h's fp32 dequantisation.
    EXPECT_TRUE(bit_equal(got, run(linear_dot, x, w.dequantized, WeightType::kF32)))
        << "M " << c.m << " K " << c.k << " N " << c.n;
  }
  // Block scales of 2^7 and more (weights near 1e5) take the dequantised route, with the same result.
  const Fp8Weights huge = fp8_weights(70, 200, 3, 1e5);
  ASSERT_GT(huge.scales.max().item<float>(), 128.0f);
  const at::Tensor x = at::randn({4, 200});
  EXPECT_TRUE(bit_equal(run_fp8(false, x, huge), run(linear_dot, x, huge.dequantized, WeightType::kF32)));
}

}  // namespace
