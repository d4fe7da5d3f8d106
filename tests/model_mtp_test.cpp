// Multi-token prediction modules: built from num_nextn_predict_layers, named as DeepSeek-V3's
// checkpoints (model.layers.{L}.*), causal, trainable, saved and loaded.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "model/pretrained.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;

namespace {

ModelConfig mtp_config() { return tiny_config({{"num_nextn_predict_layers", 2}}); }

TEST(Mtp, NamesShapesAndCausality) {
  ModelConfig c = mtp_config();
  ModelOptions o;
  o.mtp = true;
  DeepseekModel m = random_model(c, o);
  std::map<std::string, at::Tensor> sd = m.state_dict();
  EXPECT_EQ(sd.at("model.layers.3.eh_proj.weight").sizes(), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(sd.at("model.layers.4.shared_head.head.weight").sizes(), (std::vector<int64_t>{64, 32}));
  EXPECT_TRUE(sd.count("model.layers.3.mlp.experts.7.down_proj.weight"));  // MTP blocks are MoE layers
  EXPECT_TRUE(sd.count("model.layers.4.enorm.weight"));

  at::NoGradGuard no_grad;
  at::Tensor ids = random_ids(2, 12, c.vocab_size);
  std::vector<at::Tensor> out = m.mtp_logits(ids);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].sizes(), (std::vector<int64_t>{2, 11, 64}));  // position i predicts ids[i + 2]
  EXPECT_EQ(out[1].sizes(), (std::vector<int64_t>{2, 10, 64}));  // position i predicts ids[i + 3]
  // Depth k at position i sees tokens up to i + k only.
  at::Tensor changed = ids.clone();
  changed.narrow(1, 8, 4).fill_(5);
  std::vector<at::Tensor> out2 = m.mtp_logits(changed);
  // Earlier positions may differ in the last bits only: the changed tokens change how many tokens
  // each expert's GEMM holds, and with it the kernel's blocking.
  EXPECT_LT(max_abs_diff(out[0].narrow(1, 0, 7), out2[0].narrow(1, 0, 7)), 1e-5);
  EXPECT_GT(max_abs_diff(out[0].narrow(1, 7, 4), out2[0].narrow(1, 7, 4)), 1e-3);
  EXPECT_LT(max_abs_diff(out[1].narrow(1, 0, 6), out2[1].narrow(1, 0, 6)), 1e-5);
  // The main model's logits do not depend on the MTP modules.
  DeepseekModel plain(c);
  plain.load_state(sd, "with mtp");  // MTP weights ignored by a model built without them
  EXPECT_EQ(max_abs_diff(plain.forward(ids), m.forward(ids)), 0.0);
  EXPECT_THROW(plain.mtp_logits(ids), grpo::InputError);
}

TEST(Mtp, TrainsAndRoundTrips) {
  ModelConfig c = mtp_config();
  ModelOptions o;
  o.mtp = true;
  DeepseekModel m = random_model(c, o);
  m.set_requires_grad(true);
  at::Tensor ids = random_ids(2, 10, c.vocab_size);
  at::Tensor loss = m.mtp_logits(ids)[0].log_softmax(-1).gather(-1, ids.narrow(1, 2, 8).unsqueeze(-1)).mean().neg();
  loss.backward();
  for (auto& [name, t] : m.named_parameters()) {
    if (name.rfind("model.layers.3.eh_proj", 0) == 0 || name.rfind("model.layers.3.shared_head", 0) == 0 ||
        name.rfind("model.layers.3.self_attn.kv_b_proj", 0) == 0)
      EXPECT_TRUE(t->grad().defined() && t->grad().abs().sum().item<double>() > 0) << name;
    if (name.rfind("model.layers.4.", 0) == 0) EXPECT_FALSE(t->grad().defined()) << name;  // depth 2 unused
  }
  m.set_requires_grad(false);

  std::string dir = ::testing::TempDir() + "/grpo_mtp_roundtrip";
  std::filesystem::remove_all(dir);
  save_pretrained(m, dir);
  DeepseekModel back = load_pretrained(dir);
  EXPECT_TRUE(back.options().mtp);
  at::NoGradGuard no_grad;
  EXPECT_EQ(max_abs_diff(back.mtp_logits(ids)[1], m.mtp_logits(ids)[1]), 0.0);
  std::filesystem::remove_all(dir);
}

}  // namespace
