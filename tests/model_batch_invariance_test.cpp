// model/batch_invariant.h: each op's row results do not depend on the batch around them, bit for
// bit, and stay close to the plain ATen op; then the whole DeepSeek model: a sequence's logits are
// the same alone, padded inside a batch of other sequences, and fed through a cache in chunks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/batch_invariant.h"
#include "model_test_util.h"

namespace grpo {
namespace {

using grpo::testing::max_abs_diff;
using grpo::testing::random_ids;
using grpo::testing::random_model;
using grpo::testing::small_like_config;

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed, at::ScalarType dtype = at::kFloat) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(dtype));
}

// (first row, rows) slices that cut a 70-row batch every way: single rows, odd sizes, a tile's
// worth and more, the whole batch.
const std::vector<std::pair<int64_t, int64_t>> kSlices = {{0, 1}, {3, 1}, {5, 2}, {7, 15}, {9, 16}, {2, 33}, {0, 70}};

TEST(LinearInvariant, EachRowIsTheSameInAnyBatch) {
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    const at::Tensor w = randn({96, 80}, 1, dtype), x = randn({70, 80}, 2, dtype);
    const at::Tensor all = linear_invariant(x, w);  // [70, 96]
    EXPECT_LT(max_abs_diff(all, at::linear(x, w)), dtype == at::kFloat ? 1e-4 : 1e-12);
    for (auto [first, rows] : kSlices)
      EXPECT_TRUE(at::equal(linear_invariant(x.narrow(0, first, rows), w), all.narrow(0, first, rows)))
          << first << "+" << rows;
    // Leading dimensions are rows too.
    EXPECT_TRUE(at::equal(linear_invariant(x.view({7, 10, 80}), w), all.view({7, 10, 96})));
  }
}

TEST(LinearInvariant, GradientsFlowLikeLinear) {
  at::Tensor w = randn({6, 5}, 3, at::kDouble).requires_grad_(true);
  at::Tensor x = randn({3, 5}, 4, at::kDouble).requires_grad_(true);
  linear_invariant(x, w).pow(2).sum().backward();
  const at::Tensor gw = w.grad().clone(), gx = x.grad().clone();
  w.grad().zero_(), x.grad().zero_();
  at::linear(x, w).pow(2).sum().backward();
  EXPECT_LT(max_abs_diff(gw, w.grad()), 1e-12);
  EXPECT_LT(max_abs_diff(gx, x.grad()), 1e-12);
}

TEST(ElementwiseInvariant, EachElementIsTheSameInAnyBatchAndCloseToATen) {
  at::NoGradGuard no_grad;
  // 70 × 37: rows whose length is no multiple of a vector, so a plain loop's tail moves with the size.
  const at::Tensor x = randn({70, 37}, 5) * 4;
  struct Op {
    const char* name;
    at::Tensor (*mine)(const at::Tensor&);
    at::Tensor (*aten)(const at::Tensor&);
  };
  const std::vector<Op> ops = {{"silu", silu_invariant, [](const at::Tensor& t) { return at::silu(t); }},
                               {"sigmoid", sigmoid_invariant, [](const at::Tensor& t) { return at::sigmoid(t); }},
                               {"cos", cos_invariant, [](const at::Tensor& t) { return at::cos(t); }},
                               {"sin", sin_invariant, [](const at::Tensor& t) { return at::sin(t); }}};
  for (const Op& op : ops) {
    for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
      const at::Tensor in = x.to(dtype), all = op.mine(in);
      EXPECT_EQ(all.scalar_type(), dtype);
      EXPECT_LT(max_abs_diff(all, op.aten(in)), dtype == at::kFloat ? 1e-6 : 1e-14) << op.name;
      for (auto [first, rows] : kSlices)
        EXPECT_TRUE(at::equal(op.mine(in.narrow(0, first, rows)), all.narrow(0, first, rows)))
            << op.name << " " << first << "+" << rows;
      EXPECT_TRUE(at::equal(op.mine(in.reshape({-1})), all.reshape({-1}))) << op.name;
    }
  }
}

TEST(ElementwiseInvariant, SiluAndSigmoidKeepTheirGradientsUnderGradMode) {
  at::Tensor x = randn({4, 9}, 6, at::kDouble).requires_grad_(true);
  (silu_invariant(x).sum() + sigmoid_invariant(x).pow(2).sum()).backward();
  const at::Tensor got = x.grad().clone();
  x.grad().zero_();
  (at::silu(x).sum() + at::sigmoid(x).pow(2).sum()).backward();
  EXPECT_LT(max_abs_diff(got, x.grad()), 1e-14);
}

// Reference attention in float64: softmax(scale · q·k) over keys 0..slot, times the value columns.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& slots, int64_t vdim,
                               double scale) {
  const at::Tensor qd = q.to(at::kDouble), kd = k.to(at::kDouble);
  at::Tensor scores = at::einsum("bthk,bsk->bths", {qd, kd}) * scale;  // [B, T, H, S]
  const at::Tensor future = at::arange(k.size(1)).view({1, 1, 1, -1}) > slots.unsqueeze(-1).unsqueeze(-1);
  scores = scores.masked_fill(future, -INFINITY).softmax(-1);
  return at::einsum("bths,bsv->bthv", {scores, kd.narrow(-1, 0, vdim)});
}

TEST(AttentionInvariant, MatchesSoftmaxAttentionAndIgnoresEverythingPastTheSlot) {
  at::NoGradGuard no_grad;
  const int64_t b = 3, t = 5, h = 4, kdim = 24, vdim = 16, s = 19;
  const at::Tensor q = randn({b, t, h, kdim}, 7), keys = randn({b, s, kdim}, 8);
  const at::Tensor slots = at::tensor({3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 14, 15, 16, 17, 18}, at::kLong).view({b, t});
  const at::Tensor out = attention_invariant(q, keys, slots, vdim, 0.3);  // [B, T, H, v]
  EXPECT_LT(max_abs_diff(out, reference_attention(q, keys, slots, vdim, 0.3)), 1e-5);
  // Row 1 alone, with its keys cut right after its last slot: the same bits.
  const at::Tensor one =
      attention_invariant(q.narrow(0, 1, 1), keys.narrow(0, 1, 1).narrow(1, 0, 5), slots.narrow(0, 1, 1), vdim, 0.3);
  EXPECT_TRUE(at::equal(one, out.narrow(0, 1, 1)));
  // One query at a time (decode), with garbage in the keys past the slot.
  at::Tensor noisy = keys.clone();
  noisy.narrow(1, 8, s - 8).normal_();
  for (int64_t i = 0; i < t; ++i) {
    const at::Tensor single = attention_invariant(q.narrow(0, 0, 1).narrow(1, i, 1), noisy.narrow(0, 0, 1),
                                                  slots.narrow(0, 0, 1).narrow(1, i, 1), vdim, 0.3);
    EXPECT_TRUE(at::equal(single, out.narrow(0, 0, 1).narrow(1, i, 1))) << i;
  }
  EXPECT_THROW(attention_invariant(q, keys.narrow(1, 0, 10), slots, vdim, 0.3), std::exception);  // slot 18 >= 10
}

// The whole model without grad mode (generation, scoring): a sequence's logits alone, as the
// second row of a right-padded batch next to a longer sequence, and fed through a cache in chunks
// of 5, 1, 7 and then one token at a time are the same bits.
TEST(ModelInvariance, LogitsDoNotDependOnBatchPaddingOrChunks) {
  at::NoGradGuard no_grad;
  const ModelConfig c = small_like_config();
  const DeepseekModel m = random_model(c, {}, 9);
  const at::Tensor seq = random_ids(1, 20, c.vocab_size, 10);  // [1, 20]
  const at::Tensor alone = m.forward(seq);                     // [1, 20, V]
  at::Tensor batch = random_ids(2, 31, c.vocab_size, 11);
  batch.narrow(0, 1, 1).narrow(1, 0, 20).copy_(seq);  // row 1: seq then 11 padding tokens
  EXPECT_TRUE(at::equal(m.forward(batch).narrow(0, 1, 1).narrow(1, 0, 20), alone));

  LatentCache cache = m.make_cache(1, 20);
  std::vector<at::Tensor> parts;
  int64_t at_token = 0;
  for (int64_t len : {5, 1, 7, 1, 1, 1, 1, 1, 1, 1}) {
    parts.push_back(m.forward(seq.narrow(1, at_token, len), {}, &cache));
    at_token += len;
  }
  ASSERT_EQ(at_token, 20);
  EXPECT_TRUE(at::equal(at::cat(parts, 1), alone));
  // And close to the batched ATen products the training forward uses.
  at::AutoGradMode grad(true);
  EXPECT_LT(max_abs_diff(m.forward(seq), alone), 1e-4);
}

}  // namespace
}  // namespace grpo
