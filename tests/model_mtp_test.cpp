// Multi-token prediction modules: built from num_nextn_predict_layers, named as DeepSeek-V3's
// checkpoints (model.layers.{L}.*), causal, trainable, saved and loaded; depth 1 run chunk by
// chunk over a cache (drafting) equals it over the whole sequence.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "model/latent_cache.h"
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

// mtp_hidden over a cache (a 5-token chunk, then one token at a time; its keys in the cache's
// extra layer) gives mtp_logits' depth 1 at every position.
TEST(Mtp, DraftsChunkByChunkAsOverTheWholeSequence) {
  ModelConfig c = mtp_config();
  ModelOptions o;
  o.mtp = true;
  DeepseekModel m = random_model(c, o);
  at::NoGradGuard no_grad;
  const int64_t t = 12;
  at::Tensor ids = random_ids(2, t, c.vocab_size, 7);
  at::Tensor want = m.mtp_logits(ids)[0];  // [2, t-1, V]: position i predicts ids[i + 2]
  LatentCache main_cache(c.num_hidden_layers, 2, t, c.kv_lora_rank, c.qk_rope_head_dim, at::kFloat);
  LatentCache mtp_cache(c.num_hidden_layers + 1, 2, t, c.kv_lora_rank, c.qk_rope_head_dim, at::kFloat);
  std::vector<at::Tensor> got;
  for (int64_t s = 0; s < t - 1;) {
    const int64_t n = s == 0 ? 5 : 1;
    Feed main_feed, mtp_feed;
    main_feed.context = &main_cache;
    mtp_feed.context = &mtp_cache;
    at::Tensor h = m.hidden(ids.narrow(1, s, n), main_feed);             // [2, n, D]
    at::Tensor hm = m.mtp_hidden(h, ids.narrow(1, s + 1, n), mtp_feed);  // [2, n, D]
    got.push_back(m.mtp_logits_at(hm, at::arange(2 * n, at::kLong)).view({2, n, -1}));
    s += n;
  }
  at::Tensor all = at::cat(got, 1);
  ASSERT_EQ(all.sizes(), want.sizes());
  EXPECT_LT(max_abs_diff(all, want), 1e-5);

  // Wrong uses name what is wrong.
  Feed none;
  EXPECT_THROW(m.mtp_hidden(at::zeros({2, 3, c.hidden_size}), at::zeros({2, 4}, at::kLong), none), InputError);
  EXPECT_THROW(m.mtp_hidden(at::zeros({1, 1, c.hidden_size}), at::full({1, 1}, c.vocab_size, at::kLong), none),
               InputError);
  Feed short_feed;
  short_feed.context = &main_cache;  // no layer for the MTP module's keys
  EXPECT_THROW(m.mtp_hidden(at::zeros({2, 1, c.hidden_size}), at::zeros({2, 1}, at::kLong), short_feed), InputError);
  DeepseekModel plain = random_model(c);
  EXPECT_FALSE(plain.has_mtp());
  EXPECT_THROW(plain.mtp_hidden(at::zeros({1, 1, c.hidden_size}), at::zeros({1, 1}, at::kLong), none), InputError);
}

}  // namespace
