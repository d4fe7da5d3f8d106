// kernels/mla_absorb.h: the absorbed-MLA per-head products against their scalar references bit for
// bit (awkward head counts, ranks that are not multiples of the 16-column tile, token counts across
// the 4-token tiles and 32-token blocks, fp32 and bf16 weights, 1 and 2 threads) and against a
// float64 einsum within the fp32 dot-product bound.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>

#include "kernels/mla_absorb.h"

namespace {

using grpo::kernels::MlaDims;
using grpo::kernels::WeightType;

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.numel() * sizeof(float)) == 0;
}

struct Inputs {
  at::Tensor q, wkv, o_lat;  // [N, H, nope+rope] fp32, [H, nope+v, R] fp32/bf16, [N, H, R] fp32
};

Inputs inputs(int64_t n, const MlaDims& d, int64_t rope, WeightType t, uint64_t seed) {
  at::manual_seed(seed);
  Inputs in;
  in.q = at::randn({n, d.heads, d.nope + rope});
  in.wkv = at::randn({d.heads, d.nope + d.v, d.rank}) * 0.3;
  if (t == WeightType::kBF16) in.wkv = in.wkv.to(at::kBFloat16).contiguous();
  in.o_lat = at::randn({n, d.heads, d.rank});
  return in;
}

class MlaAbsorb : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    threads_ = at::get_num_threads();
    at::set_num_threads(GetParam());
  }
  void TearDown() override { at::set_num_threads(threads_); }
  int threads_ = 1;
};

TEST_P(MlaAbsorb, KernelsEqualTheirScalarReferencesBitForBit) {
  const int64_t rope = 3;
  for (WeightType t : {WeightType::kF32, WeightType::kBF16})
    for (int64_t heads : {1, 3})
      for (int64_t nope : {1, 7, 16})
        for (int64_t rank : {1, 15, 16, 17, 40})
          for (int64_t n : {1, 2, 5, 33, 70}) {
            const MlaDims d{heads, nope, 5, rank};
            const Inputs in = inputs(n, d, rope, t, n * 31 + rank);
            at::Tensor got = at::full({n, heads, rank}, 7.0f), want = at::full({n, heads, rank}, -7.0f);
            grpo::kernels::mla_absorb_query(in.q.data_ptr<float>(), n, nope + rope, d, in.wkv.data_ptr(), t,
                                            got.data_ptr<float>());
            grpo::kernels::mla_absorb_query_reference(in.q.data_ptr<float>(), n, nope + rope, d, in.wkv.data_ptr(), t,
                                                      want.data_ptr<float>());
            ASSERT_TRUE(bit_equal(got, want)) << "H " << heads << " nope " << nope << " R " << rank << " N " << n;

            // Value products: each head's linear_dot reference on W_UV[h].
            at::Tensor o = at::full({n, heads, d.v}, 3.0f);
            grpo::kernels::mla_value_out(in.o_lat.data_ptr<float>(), n, d, in.wkv.data_ptr(), t, o.data_ptr<float>());
            for (int64_t h = 0; h < heads; ++h) {
              const at::Tensor x = in.o_lat.select(1, h).contiguous();
              const at::Tensor w = in.wkv[h].narrow(0, nope, d.v).contiguous();
              at::Tensor y = at::empty({n, d.v});
              grpo::kernels::linear_dot_reference(x.data_ptr<float>(), n, rank, w.data_ptr(), t, d.v,
                                                  y.data_ptr<float>());
              ASSERT_TRUE(bit_equal(o.select(1, h).contiguous(), y)) << "head " << h << " R " << rank << " N " << n;
            }
          }
}

TEST_P(MlaAbsorb, WithinTheFp32BoundOfAFloat64Einsum) {
  const MlaDims d{4, 128, 128, 512};  // DeepSeek-V3's per-head sizes
  for (WeightType t : {WeightType::kF32, WeightType::kBF16}) {
    const Inputs in = inputs(9, d, 64, t, 5);
    at::Tensor q_lat = at::empty({9, d.heads, d.rank}), o = at::empty({9, d.heads, d.v});
    grpo::kernels::mla_absorb_query(in.q.data_ptr<float>(), 9, d.nope + 64, d, in.wkv.data_ptr(), t,
                                    q_lat.data_ptr<float>());
    grpo::kernels::mla_value_out(in.o_lat.data_ptr<float>(), 9, d, in.wkv.data_ptr(), t, o.data_ptr<float>());
    const at::Tensor w = in.wkv.to(at::kDouble), q = in.q.narrow(2, 0, d.nope).to(at::kDouble);
    const at::Tensor w_uk = w.narrow(1, 0, d.nope), w_uv = w.narrow(1, d.nope, d.v), ol = in.o_lat.to(at::kDouble);
    const double u = std::ldexp(1.0, -24);
    auto check = [&](const at::Tensor& got, const at::Tensor& exact, const at::Tensor& magnitude, int64_t k) {
      const double gamma = k * u / (1 - k * u);
      EXPECT_LE(((got.to(at::kDouble) - exact).abs() - gamma * magnitude).max().item<double>(), 0.0);
    };
    check(q_lat, at::einsum("nhj,hjr->nhr", {q, w_uk}), at::einsum("nhj,hjr->nhr", {q.abs(), w_uk.abs()}), d.nope);
    check(o, at::einsum("nhr,hvr->nhv", {ol, w_uv}), at::einsum("nhr,hvr->nhv", {ol.abs(), w_uv.abs()}), d.rank);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, MlaAbsorb, ::testing::Values(1, 2));

}  // namespace
