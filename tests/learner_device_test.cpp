// The GRPO trainer off the CPU kernels: on the portable path (model/batch_invariant.h: the ATen ops
// a GPU runs, here on the CPU) two steps with a reference model, the expert-bias update, packed
// micro-batches and gradient clipping give the CPU kernels' losses, statistics and weights (fp32,
// 1e-5); where a CUDA device is visible, the same on cuda:0 against the CPU (1e-4), with the
// optimizer state on the device; an SFT loss and its gradients on cuda:0 against the CPU. The GPU
// parts skip with the reason without one.
#include <gtest/gtest.h>

#include "kernels/cuda_info.h"
#include "learner/sft.h"
#include "learner/trainer.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;

namespace {

// Groups of 4 completions with rewards 0 / 0.5 / 1 and lengths 1..7 (one row without completion tokens).
std::vector<ScoredGroup> groups(int64_t vocab) {
  std::vector<ScoredGroup> out(3);
  for (int i = 0; i < 3; ++i) {
    ScoredGroup& g = out[i];
    g.prompt_id = "p" + std::to_string(i);
    for (int t = 0; t < 3 + i; ++t) g.prompt_token_ids.push_back((7 * i + 5 * t + 2) % vocab);
    for (int c = 0; c < 4; ++c) {
      Completion comp;
      for (int t = 0; t < (c * 2 + i) % 8; ++t) {
        comp.token_ids.push_back((11 * c + 3 * t + i + 2) % vocab);
        comp.logprobs.push_back(-2.0f - 0.1f * static_cast<float>(t));
      }
      comp.reward = 0.5 * ((c + i) % 3);
      g.completions.push_back(comp);
    }
  }
  return out;
}

TrainerOptions options() {
  TrainerOptions o;
  o.lr = 1e-3;
  o.mini_batches = 2;
  o.micro_batch_size = 3;
  o.kl_coef = 0.05;
  o.bias_update_gamma = 1e-3;
  o.max_grad_norm = 0.5;
  return o;
}

struct TwoSteps {
  std::vector<TrainStats> stats;
  std::map<std::string, at::Tensor> weights;  // on the CPU
};

TwoSteps two_steps(std::shared_ptr<DeepseekModel> policy) {
  Trainer trainer(policy, options());
  TwoSteps r;
  const auto batch = groups(policy->config().vocab_size);
  for (int s = 0; s < 2; ++s) r.stats.push_back(trainer.step(batch));
  for (auto& [name, t] : policy->named_parameters()) r.weights[name] = t->detach().to(at::kCPU);
  return r;
}

void expect_same_run(const TwoSteps& want, const TwoSteps& got, double tol) {
  for (size_t s = 0; s < want.stats.size(); ++s) {
    const auto a = want.stats[s].as_map(), b = got.stats[s].as_map();
    for (const char* key : {"loss", "policy_loss", "kl", "entropy", "approx_kl", "grad_norm_max", "reward_mean",
                            "tokens", "expert_load_imbalance"})
      EXPECT_NEAR(a.at(key), b.at(key), tol * std::max(1.0, std::abs(a.at(key)))) << "step " << s << " " << key;
  }
  EXPECT_GT(want.stats[1].kl, 0.0);  // the policy moved away from its reference
  for (const auto& [name, w] : want.weights) EXPECT_LT(max_abs_diff(w, got.weights.at(name)), tol) << name;
}

ModelConfig config() { return tiny_config({{"initializer_range", 0.05}}); }

TEST(TrainerDevice, PortablePathMatchesTheCpuKernels) {
  const TwoSteps kernels = two_steps(std::make_shared<DeepseekModel>(random_model(config())));
  PortableOps portable;
  expect_same_run(kernels, two_steps(std::make_shared<DeepseekModel>(random_model(config()))), 1e-5);
}

TEST(TrainerDevice, CudaMatchesTheCpu) {
  if (const std::string why = no_gpu_reason(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  const TwoSteps cpu = two_steps(std::make_shared<DeepseekModel>(random_model(config())));
  auto gpu = std::make_shared<DeepseekModel>(copied_with(random_model(config()), on_gpu()));
  expect_same_run(cpu, two_steps(gpu), 1e-4);
  for (auto& [name, t] : gpu->named_parameters()) EXPECT_TRUE(t->is_cuda()) << name;
}

// SFT on cuda:0: a batch with teacher top-k rows moved there (SftBatch::to), the loss and every
// parameter's gradient equal the CPU's (1e-4).
TEST(TrainerDevice, SftLossAndGradientsOnCudaMatchTheCpu) {
  if (const std::string why = no_gpu_reason(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  DenseDecoder cpu = random_dense(dense_config_json("qwen2"));
  DenseDecoder gpu(DenseConfig::from_json(dense_config_json("qwen2"), "test"), on_gpu());
  gpu.load_state(cpu.state_dict(), "cpu weights");
  SftExample a{{2, 5, 7, 9, 11, 3}, 2, {{7, 8, 9}, {9, 1, 2}}, {{-0.1f, -2.5f, -3.0f}, {-0.2f, -1.9f, -4.0f}}};
  SftExample b{{4, 6, 8, 10}, 3, {}, {}};
  const SftBatch batch = make_sft_batch({&a, &b});
  auto loss_and_grads = [&](DenseDecoder& m) {
    m.set_requires_grad(true);
    const SftBatch on = batch.to(m.options().device);
    const at::Tensor logits = m.logits(on.ids.narrow(1, 0, on.ids.size(1) - 1));
    const SftLoss l = sft_loss(logits, on, 0.5);
    l.total.backward();
    std::map<std::string, at::Tensor> g;
    for (auto& [name, p] : m.named_trainable()) g[name] = p.grad().to(at::kCPU);
    return std::make_pair(l.total.item<double>(), g);
  };
  const auto [want, want_g] = loss_and_grads(cpu);
  const auto [got, got_g] = loss_and_grads(gpu);
  EXPECT_NEAR(want, got, 1e-4);
  for (const auto& [name, g] : want_g) EXPECT_LT(max_abs_diff(g, got_g.at(name)), 1e-4) << name;
}

}  // namespace
