// Autograd through the model: gradients equal central finite differences in float64, SGD lowers
// the loss, bf16 compute stays close to fp32, and bf16 training with fp32 master weights works.
#include <gtest/gtest.h>

#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;

namespace {

at::Tensor nll(const DeepseekModel& m, const at::Tensor& ids) { return -m.logprobs(ids).mean(); }

at::Tensor* param(DeepseekModel& m, const std::string& name) {
  for (auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  ADD_FAILURE() << "no parameter " << name;
  return nullptr;
}

TEST(Training, GradientsMatchFiniteDifferences) {
  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
  m.set_requires_grad(true);
  at::Tensor ids = random_ids(2, 10, c.vocab_size, 5);
  nll(m, ids).backward();

  // Attention, norms, dense MLP, routed and shared experts, the router (through the routing
  // weights), embeddings and the head.
  const std::vector<std::string> names = {
      "model.embed_tokens.weight",
      "model.layers.0.self_attn.q_a_proj.weight",
      "model.layers.0.self_attn.kv_b_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
      "model.layers.1.self_attn.kv_a_proj_with_mqa.weight",
      "model.layers.1.self_attn.kv_a_layernorm.weight",
      "model.layers.1.self_attn.o_proj.weight",
      "model.layers.1.mlp.gate.weight",
      "model.layers.2.mlp.shared_experts.up_proj.weight",
      "model.layers.2.input_layernorm.weight",
      "model.norm.weight",
      "lm_head.weight",
  };
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(17);
  const double h = 1e-6;
  for (const auto& name : names) {
    at::Tensor* p = param(m, name);
    ASSERT_TRUE(p->grad().defined()) << name;
    for (int trial = 0; trial < 3; ++trial) {
      int64_t i = at::randint(p->numel(), {1}, gen, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
      at::Tensor flat = p->detach().view({-1});
      double old = flat[i].item<double>(), fd;
      {
        at::NoGradGuard no_grad;
        flat[i] = old + h;
        double up = nll(m, ids).item<double>();
        flat[i] = old - h;
        double down = nll(m, ids).item<double>();
        flat[i] = old;
        fd = (up - down) / (2 * h);
      }
      double g = p->grad().view({-1})[i].item<double>();
      EXPECT_NEAR(g, fd, 1e-6 + 1e-5 * std::abs(fd)) << name << "[" << i << "]";
    }
  }
  // An expert some token was routed to receives a gradient.
  bool any_expert = false;
  for (int e = 0; e < c.n_routed_experts; ++e)
    any_expert |= param(m, "model.layers.1.mlp.experts." + std::to_string(e) + ".down_proj.weight")->grad().defined();
  EXPECT_TRUE(any_expert);
  EXPECT_FALSE(param(m, "model.layers.1.mlp.gate.e_score_correction_bias")->requires_grad());
}

// Plain SGD on one batch; returns the losses before each step and after the last.
std::vector<double> sgd(DeepseekModel& m, const at::Tensor& ids, int steps, double lr) {
  m.set_requires_grad(true);
  std::vector<double> losses;
  for (int s = 0; s <= steps; ++s) {
    at::Tensor loss = nll(m, ids);
    losses.push_back(loss.item<double>());
    if (s == steps) break;
    loss.backward();
    at::NoGradGuard no_grad;
    for (auto& [name, p] : m.named_trainable()) {
      if (!p.grad().defined()) continue;
      p.sub_(p.grad() * lr);
      p.mutable_grad().zero_();
    }
  }
  return losses;
}

TEST(Training, SgdLowersTheLoss) {
  ModelConfig c = tiny_config({{"initializer_range", 0.05}});
  DeepseekModel m = random_model(c);
  at::Tensor ids = random_ids(4, 16, c.vocab_size, 21);
  std::vector<double> losses = sgd(m, ids, 5, 0.2);
  for (size_t i = 1; i < losses.size(); ++i) EXPECT_LT(losses[i], losses[i - 1]) << "step " << i;
  EXPECT_LT(losses.back(), losses.front() - 0.05);
}

TEST(Training, Bf16ForwardCloseToFp32) {
  at::NoGradGuard no_grad;
  ModelConfig c = tiny_config({{"initializer_range", 0.05}});
  DeepseekModel m32 = random_model(c);
  DeepseekModel m16(c, {at::kBFloat16, at::kBFloat16});
  m16.load_state(m32.state_dict(), "fp32 model");
  at::Tensor ids = random_ids(2, 16, c.vocab_size, 22);
  at::Tensor lp32 = m32.logprobs(ids), lp16 = m16.logprobs(ids);
  EXPECT_EQ(lp16.scalar_type(), at::kFloat);
  double diff = max_abs_diff(lp16, lp32);
  EXPECT_LT(diff, 0.1);  // bf16 has 8 mantissa bits; log-probs are ~ -4.2 here
  EXPECT_GT(diff, 0.0);  // and it really ran in bf16
}

TEST(Training, Bf16WithFp32MasterWeights) {
  ModelConfig c = tiny_config({{"initializer_range", 0.05}});
  DeepseekModel master = random_model(c, {at::kBFloat16, at::kFloat});
  DeepseekModel ref = random_model(c);  // same seed: the same fp32 weights
  at::Tensor ids = random_ids(4, 16, c.vocab_size, 23);
  master.set_requires_grad(true);
  ref.set_requires_grad(true);
  nll(master, ids).backward();
  nll(ref, ids).backward();
  auto pm = master.named_trainable(), pr = ref.named_trainable();
  ASSERT_EQ(pm.size(), pr.size());
  at::Tensor gm, gr;
  std::vector<at::Tensor> gms, grs;
  for (size_t i = 0; i < pm.size(); ++i) {
    const at::Tensor &m = pm[i].second, &r = pr[i].second;
    ASSERT_EQ(m.scalar_type(), at::kFloat);
    if (!r.grad().defined()) continue;
    ASSERT_TRUE(m.grad().defined()) << pm[i].first;
    EXPECT_EQ(m.grad().scalar_type(), at::kFloat);
    gms.push_back(m.grad().view({-1}));
    grs.push_back(r.grad().view({-1}));
  }
  gm = at::cat(gms);
  gr = at::cat(grs);
  double cosine = (gm * gr).sum().item<double>() / (gm.norm().item<double>() * gr.norm().item<double>());
  EXPECT_GT(cosine, 0.99);
  for (auto& [name, p] : pm) p.mutable_grad() = at::Tensor();

  std::vector<double> losses = sgd(master, ids, 5, 0.2);
  EXPECT_LT(losses.back(), losses.front() - 0.05);
}

}  // namespace
