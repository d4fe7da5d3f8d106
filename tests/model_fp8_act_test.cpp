// FP8 activations (W8A8, Linear::quantize_activations): project() against a float64 reference of
// the same quantised math — each 1×128 tile of x scaled by amax/448 (1 when all zero) and rounded
// to e4m3, each 128×128 block of W decoded with its scale, the products summed in float64 — and
// the option reaching a whole model (ModelOptions::fp8_activations).
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "model/fp8.h"
#include "model/linear.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;

namespace {

// y[m, n] = Σ_k xq[m, k] · wq[n, k] in float64, from scalar e4m3 encode/decode.
at::Tensor w8a8_reference(const at::Tensor& x, const Linear& w) {
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  const int64_t M = xf.size(0), K = xf.size(1), N = w.weight.size(0), T = kFp8BlockSize;
  at::Tensor xq = at::empty({M, K}, at::kDouble);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k0 = 0; k0 < K; k0 += T) {
      const int64_t k1 = std::min(K, k0 + T);
      float amax = 0;
      for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(xf[m][k].item<float>()));
      const float s = amax == 0 ? 1.0f : amax / kFp8E4M3Max;
      for (int64_t k = k0; k < k1; ++k)
        xq[m][k] = static_cast<double>(fp8_e4m3_decode(fp8_e4m3_encode(xf[m][k].item<float>() / s))) * s;
    }
  const at::Tensor codes = w.weight.contiguous().view(at::kByte), scale = w.scale_inv.contiguous();
  at::Tensor wd = at::empty({N, K}, at::kDouble);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      wd[n][k] = static_cast<double>(fp8_e4m3_decode(codes[n][k].item<uint8_t>())) *
                 static_cast<double>(scale[n / T][k / T].item<float>());
  return at::matmul(xq, wd.t());  // [M, N]
}

Linear w8a8(const at::Tensor& w) {
  Linear l = quantize_linear(w);
  l.quantize_activations = true;
  return l;
}

TEST(Fp8Activations, ProjectEqualsFloat64ReferenceOfTheQuantisedMath) {
  at::manual_seed(3);
  // K = 300: two full tiles and a partial one; N = 130: a partial weight block too.
  at::Tensor x = at::randn({6, 300}) * at::linspace(0.01, 20, 300);  // tiles of very different ranges
  x[2].narrow(0, 128, 128).zero_();                                  // an all-zero tile (scale 1)
  x[4][7] = 3000;                                                    // an outlier inside one tile
  const Linear w = w8a8(at::randn({130, 300}) * 0.05);
  const at::Tensor ref = w8a8_reference(x, w);
  const at::Tensor y = project(x, w);
  ASSERT_EQ(y.sizes(), ref.sizes());
  EXPECT_EQ(y.scalar_type(), at::kFloat);
  const double scale = ref.abs().max().item<double>();
  EXPECT_LT(max_abs_diff(y, ref) / scale, 2e-6) << "fp32 accumulation of the same quantised operands";

  // Not the weight-only product: the activations were rounded.
  Linear weight_only = w;
  weight_only.quantize_activations = false;
  EXPECT_GT(max_abs_diff(project(x, weight_only), ref) / scale, 1e-4);

  // Leading dimensions are kept ([B, T, in] -> [B, T, out]); bf16 in, bf16 out.
  const at::Tensor y3 = project(x.view({2, 3, 300}).to(at::kBFloat16), w);
  ASSERT_EQ(y3.sizes(), (at::IntArrayRef{2, 3, 130}));
  EXPECT_EQ(y3.scalar_type(), at::kBFloat16);
  const at::Tensor ref16 = w8a8_reference(x.to(at::kBFloat16), w).view({2, 3, 130});
  EXPECT_LT(max_abs_diff(y3, ref16) / scale, 1e-2) << "bf16 rounding of the output only";
}

TEST(Fp8Activations, ModelOptionReachesEveryFp8Linear) {
  const ModelConfig c = tiny_config();
  DeepseekModel master = random_model(c);
  ModelOptions wo = ModelOptions::for_dtype("fp8"), a8 = wo;
  a8.fp8_activations = true;
  DeepseekModel weight_only(c, wo), both(c, a8);
  weight_only.load_state(master.state_dict(), "test");
  both.load_state(master.state_dict(), "test");
  const at::Tensor ids = random_ids(2, 12, c.vocab_size);
  at::NoGradGuard no_grad;
  const at::Tensor lp_wo = weight_only.logprobs(ids), lp_a8 = both.logprobs(ids), lp = master.logprobs(ids);
  EXPECT_TRUE(at::isfinite(lp_a8).all().item<bool>());
  EXPECT_GT(max_abs_diff(lp_a8, lp_wo), 0) << "the activations are quantised";
  // Still the same model: its mean log-prob error is of the order of the weight-only one (this
  // tiny random model, weights of std 0.3, is far more sensitive than a trained one).
  const double err_a8 = (lp_a8 - lp).abs().mean().item<double>(), err_wo = (lp_wo - lp).abs().mean().item<double>();
  EXPECT_LT(err_a8, 3 * err_wo) << err_a8 << " vs weight-only " << err_wo;

  ModelOptions bad;
  bad.fp8_activations = true;
  EXPECT_THROW(DeepseekModel(c, bad), InputError) << "fp8_activations needs fp8";
}

}  // namespace
