// AdamW against LibTorch's own torch::optim::AdamW, the LR schedule at hand-computed points, and
// grad-norm clipping.
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>

#include "common/error.h"
#include "learner/optim.h"

namespace grpo {
namespace {

TEST(AdamW, MatchesTorchAdamWOverSeveralSteps) {
  at::manual_seed(3);
  at::Tensor init = at::randn({5, 7}, at::kDouble);
  at::Tensor ours = init.clone().requires_grad_(true);
  at::Tensor theirs = init.clone().requires_grad_(true);
  AdamW opt({{"w", ours}}, {0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(0.0).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  const double lrs[] = {1e-2, 3e-3, 5e-2, 1e-3};
  for (double lr : lrs) {
    at::Tensor target = at::randn({5, 7}, at::kDouble);
    opt.zero_grad();
    (ours - target).pow(3).sum().backward();
    opt.step(lr);
    ref.zero_grad();
    static_cast<torch::optim::AdamWOptions&>(ref.param_groups()[0].options()).lr(lr);
    (theirs - target).pow(3).sum().backward();
    ref.step();
  }
  EXPECT_LT((ours - theirs).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(opt.steps(), 4);
}

// learner/optim.h's AdamW on fp32 parameters runs the fused kernel; it follows LibTorch's own
// torch::optim::AdamW (op by op, fp32) within fp32 rounding, with weight decay and several LRs.
TEST(AdamW, OnFp32ParametersTheFusedKernelMatchesTorchAdamW) {
  at::manual_seed(3);
  const at::Tensor init = at::randn({37, 11}, at::kFloat);
  at::Tensor ours = init.clone().requires_grad_(true), theirs = init.clone().requires_grad_(true);
  AdamW opt({{"w", ours}}, {0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(0.0).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  for (double lr : {1e-2, 3e-3, 5e-2, 1e-3}) {
    const at::Tensor target = at::randn({37, 11}, at::kFloat);
    opt.zero_grad();
    (ours - target).pow(3).sum().backward();
    const double norm = clip_grad_norm({ours}, 0);
    EXPECT_NEAR(norm, ours.grad().to(at::kDouble).norm().item<double>(), 1e-12 * norm);
    opt.step(lr);
    ref.zero_grad();
    static_cast<torch::optim::AdamWOptions&>(ref.param_groups()[0].options()).lr(lr);
    (theirs - target).pow(3).sum().backward();
    ref.step();
  }
  EXPECT_LT((ours - theirs).abs().max().item<double>(), 1e-6);
}

TEST(AdamW, StateRoundTripsAndResumesIdentically) {
  at::Tensor a = at::ones({3}, at::kFloat).requires_grad_(true);
  AdamW opt({{"a", a}}, {});
  a.mutable_grad() = at::full({3}, 0.5f);
  opt.step(0.1);
  at::Tensor b = a.detach().clone().requires_grad_(true);
  AdamW resumed({{"a", b}}, {});
  resumed.load_state(opt.state(), "test");
  EXPECT_EQ(resumed.steps(), 1);
  a.mutable_grad() = at::full({3}, -0.25f);
  b.mutable_grad() = at::full({3}, -0.25f);
  opt.step(0.1);
  resumed.step(0.1);
  EXPECT_TRUE(at::equal(a, b));
}

TEST(AdamW, LoadStateNamesMissingOrMisshapenEntry) {
  at::Tensor a = at::ones({3}).requires_grad_(true);
  AdamW opt({{"layer.w", a}}, {});
  auto state = opt.state();
  state.erase("layer.w.exp_avg_sq");
  try {
    opt.load_state(state, "ckpt/optimizer.safetensors");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("layer.w.exp_avg_sq"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ckpt/optimizer.safetensors"), std::string::npos) << e.what();
  }
  state = opt.state();
  state["layer.w.exp_avg"] = at::zeros({4});
  EXPECT_THROW(opt.load_state(state, "x"), InputError);
  EXPECT_THROW(AdamW({{"h", at::ones({2}, at::kBFloat16)}}, {}), InputError);
}

TEST(LrSchedule, WarmupThenDecay) {
  LrSchedule s{1.0, 4, 14, LrDecay::kLinear, 0.1};
  EXPECT_DOUBLE_EQ(lr_at(s, 0), 0.25);
  EXPECT_DOUBLE_EQ(lr_at(s, 3), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 4), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 9), 0.1 + 0.9 * 0.5);
  EXPECT_DOUBLE_EQ(lr_at(s, 14), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(s, 100), 0.1);
  s.decay = LrDecay::kCosine;
  EXPECT_NEAR(lr_at(s, 9), 0.1 + 0.9 * 0.5, 1e-12);
  EXPECT_NEAR(lr_at(s, 6), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.2)), 1e-12);
  s.decay = LrDecay::kConstant;
  EXPECT_DOUBLE_EQ(lr_at(s, 50), 1.0);
  EXPECT_EQ(parse_lr_decay("cosine"), LrDecay::kCosine);
  EXPECT_THROW(parse_lr_decay("exp"), InputError);
}

TEST(ClipGradNorm, ScalesToMaxNormAndReportsTheNormBefore) {
  at::Tensor a = at::zeros({2}, at::kDouble).requires_grad_(true);
  at::Tensor b = at::zeros({1}, at::kDouble).requires_grad_(true);
  at::Tensor unused = at::zeros({1}, at::kDouble).requires_grad_(true);
  a.mutable_grad() = at::tensor({3.0, 0.0}, at::kDouble);
  b.mutable_grad() = at::tensor({4.0}, at::kDouble);
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b, unused}, 10.0), 5.0);
  EXPECT_DOUBLE_EQ(a.grad()[0].item<double>(), 3.0);  // under the cap: untouched
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b, unused}, 1.0), 5.0);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_NEAR(b.grad()[0].item<double>(), 4.0 / (5.0 + 1e-6), 1e-12);
}

}  // namespace
}  // namespace grpo
