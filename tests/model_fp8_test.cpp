// FP8 codes against exact values and a float64 brute-force nearest-code reference; block and tile
// quantisation against the error bound e4m3 allows.
#include "model/fp8.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "common/error.h"
#include "model_ckpt_testutil.h"

namespace grpo {
namespace {

// e4m3fn value of a code from its definition, in float64.
double e4m3_value(int c) {
  const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
  const double mag = e == 0 ? m * std::ldexp(1.0, -9) : (1.0 + m / 8.0) * std::ldexp(1.0, e - 7);
  return s ? -mag : mag;
}
bool e4m3_is_nan(int c) { return (c & 0x7F) == 0x7F; }

// Nearest finite code with x's sign (so -tiny -> -0), ties to the even code; |x| > 448 -> +-448.
uint8_t brute_force_encode(double x) {
  if (std::isnan(x)) return 0x7F;
  const int sign = std::signbit(x) ? 0x80 : 0;
  int best = -1;
  double best_d = std::numeric_limits<double>::infinity();
  for (int m = 0; m < 0x7F; ++m) {  // magnitudes 0 .. 0x7E
    const double d = std::fabs(std::fabs(x) - e4m3_value(m));
    if (d < best_d || (d == best_d && (m & 1) == 0)) best = m, best_d = d;
  }
  return static_cast<uint8_t>(sign | best);
}

TEST(Fp8E4M3, KnownCodes) {
  EXPECT_EQ(fp8_e4m3_decode(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_decode(0xFE), -448.0f);
  EXPECT_EQ(fp8_e4m3_decode(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(fp8_e4m3_decode(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(fp8_e4m3_decode(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(fp8_e4m3_decode(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_decode(0x39), 1.125f);
  const float neg_zero = fp8_e4m3_decode(0x80);
  EXPECT_EQ(neg_zero, 0.0f);
  EXPECT_TRUE(std::signbit(neg_zero));
  EXPECT_TRUE(std::isnan(fp8_e4m3_decode(0x7F)));
  EXPECT_TRUE(std::isnan(fp8_e4m3_decode(0xFF)));
}

TEST(Fp8E4M3, EveryCodeDecodesExactlyAndReencodesToItself) {
  for (int c = 0; c < 256; ++c) {
    const float v = fp8_e4m3_decode(static_cast<uint8_t>(c));
    if (e4m3_is_nan(c)) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    EXPECT_EQ(static_cast<double>(v), e4m3_value(c)) << "code " << c;
    EXPECT_EQ(std::signbit(v), c >= 0x80) << c;
    EXPECT_EQ(fp8_e4m3_encode(v), c) << "code " << c;
  }
}

TEST(Fp8E4M3, EncodeSaturatesAndMapsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp8_e4m3_encode(inf), 0x7E);
  EXPECT_EQ(fp8_e4m3_encode(-inf), 0xFE);
  EXPECT_EQ(fp8_e4m3_encode(1e30f), 0x7E);
  EXPECT_EQ(fp8_e4m3_encode(464.0f), 0x7E);  // midpoint to the (non-existent) 480
  EXPECT_EQ(fp8_e4m3_encode(-449.0f), 0xFE);
  EXPECT_EQ(fp8_e4m3_encode(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(fp8_e4m3_encode(-std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(fp8_e4m3_encode(0.0f), 0x00);
  EXPECT_EQ(fp8_e4m3_encode(-0.0f), 0x80);
  EXPECT_EQ(fp8_e4m3_encode(std::ldexp(1.0f, -11)), 0x00);      // a quarter step rounds to zero
  EXPECT_EQ(fp8_e4m3_encode(std::ldexp(1.0f, -10)), 0x00);      // half of 2^-9: tie to even 0
  EXPECT_EQ(fp8_e4m3_encode(3 * std::ldexp(1.0f, -10)), 0x02);  // 1.5 steps: tie to even 2
}

TEST(Fp8E4M3, RandomValuesMatchFloat64NearestCode) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> expo(-14.0, 10.0), unit(0.0, 1.0);
  std::vector<float> xs;
  for (int i = 0; i < 20000; ++i) {
    const double mag = std::exp2(expo(rng));
    xs.push_back(static_cast<float>(unit(rng) < 0.5 ? -mag : mag));
  }
  // Exact midpoints between neighbouring codes (ties) and one float step either side of them.
  for (int c = 0; c < 0x7E; ++c) {
    const float mid = static_cast<float>((e4m3_value(c) + e4m3_value(c + 1)) / 2);
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  // A stride through every float32 bit pattern from +0 to 512 (float subnormals included).
  for (uint32_t bits = 0; bits <= 0x44000000u; bits += 16411) {
    float x;
    std::memcpy(&x, &bits, 4);
    xs.push_back(x);
    xs.push_back(-x);
  }
  for (float x : xs) ASSERT_EQ(fp8_e4m3_encode(x), brute_force_encode(x)) << "x = " << x;

  // The tensor form agrees with the scalar one.
  at::Tensor t = at::from_blob(xs.data(), {(int64_t)xs.size()}, at::kFloat);
  at::Tensor q = fp8_e4m3_encode(t);
  ASSERT_EQ(q.scalar_type(), at::kFloat8_e4m3fn);
  const at::Tensor qb = q.view(at::kByte);
  for (size_t i = 0; i < xs.size(); i += 97) ASSERT_EQ(qb[i].item<uint8_t>(), fp8_e4m3_encode(xs[i]));
  EXPECT_TRUE(at::equal(fp8_decode(q), fp8_decode(fp8_e4m3_encode(fp8_decode(q)))));
}

TEST(Fp8E5M2, DecodeMatchesDefinition) {
  EXPECT_EQ(fp8_e5m2_decode(0x3C), 1.0f);
  EXPECT_EQ(fp8_e5m2_decode(0x7B), 57344.0f);  // largest finite
  EXPECT_EQ(fp8_e5m2_decode(0x04), std::ldexp(1.0f, -14));
  EXPECT_EQ(fp8_e5m2_decode(0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(fp8_e5m2_decode(0x7C), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp8_e5m2_decode(0xFC), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp8_e5m2_decode(0x7D)));
  EXPECT_TRUE(std::isnan(fp8_e5m2_decode(0xFF)));
  // e5m2 is the top byte of an IEEE half: check every finite code against at::kHalf.
  for (int c = 0; c < 256; ++c) {
    const at::Half h = c10::Half(static_cast<uint16_t>(c << 8), c10::Half::from_bits());
    const float ref = static_cast<float>(h);
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(fp8_e5m2_decode(c))) << c;
    } else {
      EXPECT_EQ(fp8_e5m2_decode(c), ref) << c;
    }
  }
  at::Tensor codes = at::arange(256, at::kInt).to(at::kByte).view(at::kFloat8_e5m2);
  at::Tensor v = fp8_decode(codes);
  EXPECT_EQ(v[0x3C].item<float>(), 1.0f);
}

// Our codecs agree with LibTorch's native float8 types code for code: every one of the 256 codes of
// e4m3fn and e5m2 decodes to LibTorch's value (NaN to NaN), and every float LibTorch converts
// without saturating (|x| < 464, where LibTorch's e4m3fn gives NaN and ours saturates to 448)
// encodes to LibTorch's code.
TEST(Fp8, AgreesWithLibTorchFloat8) {
  const at::Tensor bytes = at::arange(256, at::kInt).to(at::kByte);
  for (at::ScalarType t : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
    const at::Tensor ours = fp8_decode(bytes.view(t)), torch = bytes.view(t).to(at::kFloat);
    EXPECT_TRUE(at::equal(ours.isnan(), torch.isnan())) << c10::toString(t);
    const at::Tensor finite = torch.isnan().logical_not();
    EXPECT_TRUE(at::equal(ours.masked_select(finite), torch.masked_select(finite))) << c10::toString(t);
  }
  std::vector<float> xs;
  for (uint32_t bits = 0; bits < 0x43E80000u; bits += 4099) {  // +0 up to 464 (floats, subnormals included)
    float x;
    std::memcpy(&x, &bits, 4);
    xs.push_back(x);
    xs.push_back(-x);
  }
  const at::Tensor x = at::from_blob(xs.data(), {(int64_t)xs.size()}, at::kFloat);
  const at::Tensor ours = fp8_e4m3_encode(x).view(at::kByte), torch = x.to(at::kFloat8_e4m3fn).view(at::kByte);
  const at::Tensor differ = ours.ne(torch);
  EXPECT_EQ(differ.sum().item<int64_t>(), 0)
      << "first differing x: " << (differ.any().item<bool>() ? x.masked_select(differ)[0].item<float>() : 0.0f);
}

// Checks q/scale against the definition for blocks of br x bc: scale = amax/448 (1 for zero
// blocks), q = encode(x / scale), dequantised within fp8_element_bound. Returns the largest
// error / bound ratio seen.
double check_blocks(const at::Tensor& x, const Fp8Blocks& b, const at::Tensor& xhat, int64_t br, int64_t bc) {
  const int64_t R = x.size(0), C = x.size(1);
  EXPECT_EQ(b.q.sizes(), x.sizes());
  EXPECT_EQ(b.scale.sizes(), (std::vector<int64_t>{(R + br - 1) / br, (C + bc - 1) / bc}));
  auto xa = x.accessor<float, 2>();
  const at::Tensor q_bytes = b.q.view(at::kByte);
  auto qa = q_bytes.accessor<uint8_t, 2>();
  auto sa = b.scale.accessor<float, 2>();
  auto ha = xhat.accessor<float, 2>();
  double worst = 0;
  for (int64_t i = 0; i < b.scale.size(0); ++i)
    for (int64_t j = 0; j < b.scale.size(1); ++j) {
      float amax = 0;
      for (int64_t r = i * br; r < std::min(R, (i + 1) * br); ++r)
        for (int64_t c = j * bc; c < std::min(C, (j + 1) * bc); ++c) amax = std::max(amax, std::fabs(xa[r][c]));
      const float s = amax == 0 ? 1.0f : amax / 448.0f;
      EXPECT_EQ(sa[i][j], s) << "block " << i << "," << j;
      for (int64_t r = i * br; r < std::min(R, (i + 1) * br); ++r)
        for (int64_t c = j * bc; c < std::min(C, (j + 1) * bc); ++c) {
          EXPECT_EQ(qa[r][c], fp8_e4m3_encode(xa[r][c] / s));
          const double err = std::fabs((double)ha[r][c] - xa[r][c]);
          const double bound = ckpt_test::fp8_element_bound(xa[r][c], s);
          EXPECT_LE(err, bound) << "at " << r << "," << c << " x=" << xa[r][c];
          worst = std::max(worst, err / bound);
        }
    }
  return worst;
}

// Rows of very different magnitude, so blocks have different scales, plus an all-zero block.
at::Tensor test_matrix(int64_t R, int64_t C) {
  at::Tensor x = at::randn({R, C}) * at::exp2(at::randint(-12, 6, {R, 1}).to(at::kFloat));
  if (R > 128 && C > 128) x.slice(0, 128, 256).slice(1, 0, 128).zero_();
  return x;
}

TEST(Fp8Blocks, QuantiseDequantiseWithinBound) {
  at::manual_seed(3);
  for (auto [R, C] : std::vector<std::pair<int64_t, int64_t>>{{128, 128}, {300, 200}, {1, 5}, {257, 129}}) {
    at::Tensor x = test_matrix(R, C);
    Fp8Blocks b = quantize_fp8_blocks(x);
    at::Tensor xhat = dequantize_fp8_blocks(b.q, b.scale);
    const double worst = check_blocks(x, b, xhat, 128, 128);
    EXPECT_GT(worst, 0.25) << R << "x" << C;  // the bound is not loose by orders of magnitude
    if (R > 128 && C > 128) EXPECT_EQ(b.scale[1][0].item<float>(), 1.0f);  // the zero block
  }
}

TEST(Fp8Blocks, OtherBlockSizeAndBf16Input) {
  at::manual_seed(4);
  at::Tensor x = test_matrix(70, 45);
  Fp8Blocks b = quantize_fp8_blocks(x.to(at::kBFloat16), 32);
  check_blocks(x.to(at::kBFloat16).to(at::kFloat), b, dequantize_fp8_blocks(b.q, b.scale, 32), 32, 32);
}

TEST(Fp8Blocks, ErrorsNameTheProblem) {
  at::Tensor x = at::ones({4, 4});
  x[1][2] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize_fp8_blocks(x), InputError);
  x[1][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_fp8_blocks(x), InputError);
  Fp8Blocks b = quantize_fp8_blocks(at::ones({200, 300}));
  ckpt_test::expect_input_error(
      [&] {
        dequantize_fp8_blocks(b.q, at::ones({2, 2}));
      },
      {"[2, 2]", "[200, 300]", "need [2, 3]"});
  EXPECT_THROW(quantize_fp8_blocks(at::ones({2, 2, 2})), std::invalid_argument);
}

TEST(Fp8ActTiles, PerRowTilesOf128) {
  at::manual_seed(5);
  at::Tensor x = test_matrix(7, 300);
  x[2].slice(0, 128, 256).zero_();
  Fp8Blocks b = quantize_fp8_act_tiles(x);
  EXPECT_EQ(b.scale.sizes(), (std::vector<int64_t>{7, 3}));
  at::Tensor xhat = dequantize_fp8_act_tiles(b.q, b.scale);
  EXPECT_GT(check_blocks(x, b, xhat, 1, 128), 0.25);
  EXPECT_EQ(b.scale[2][1].item<float>(), 1.0f);
  // Block dequantisation with 1x128 tiles is not the same thing: shapes are checked.
  EXPECT_THROW(dequantize_fp8_blocks(b.q, b.scale), InputError);
}

}  // namespace
}  // namespace grpo
