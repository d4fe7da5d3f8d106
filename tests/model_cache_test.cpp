// Incremental decoding over the latent cache (prefill, then one token at a time in the absorbed
// form) equals the full forward; the cache holds only kv_lora_rank + rope values per token.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;
using nlohmann::json;

namespace {

std::vector<json> cache_configs() {
  return {
      json::object(),
      {{"rope_interleave", false},
       {"rope_scaling",
        {{"type", "yarn"},
         {"factor", 4},
         {"original_max_position_embeddings", 64},
         {"mscale", 0.707},
         {"mscale_all_dim", 1.0}}}},
      {{"architectures", {"DeepseekV2ForCausalLM"}},
       {"model_type", "deepseek_v2"},
       {"q_lora_rank", nullptr},
       {"topk_method", "group_limited_greedy"},
       {"scoring_func", "softmax"},
       {"norm_topk_prob", false},
       {"moe_layer_freq", 2},
       {"num_hidden_layers", 4},
       {"rope_scaling",
        {{"type", "yarn"},
         {"factor", 8},
         {"original_max_position_embeddings", 32},
         {"mscale", 0.707},
         {"mscale_all_dim", 0.707}}}},
  };
}

// Prefill `prompt` tokens, then decode the rest one by one; returns logits [B, T, V].
at::Tensor incremental_logits(const DeepseekModel& m, const at::Tensor& ids, int64_t prompt) {
  LatentCache cache = m.make_cache(ids.size(0), ids.size(1));
  std::vector<at::Tensor> parts{m.forward(ids.narrow(1, 0, prompt), {}, &cache)};
  for (int64_t t = prompt; t < ids.size(1); ++t) parts.push_back(m.forward(ids.narrow(1, t, 1), {}, &cache));
  EXPECT_EQ(cache.length(), ids.size(1));
  return at::cat(parts, 1);
}

TEST(LatentCache, DecodeEqualsFullForward) {
  at::NoGradGuard no_grad;
  for (const json& patch : cache_configs()) {
    ModelConfig c = tiny_config(patch);
    DeepseekModel m = random_model(c);
    at::Tensor ids = random_ids(2, 18, c.vocab_size, 11);
    at::Tensor full = m.forward(ids);
    at::Tensor inc = incremental_logits(m, ids, 5);
    EXPECT_LT(max_abs_diff(inc, full), 1e-4) << patch.dump();
    EXPECT_LT(max_abs_diff(inc.log_softmax(-1), full.log_softmax(-1)), 1e-4) << patch.dump();
  }
}

TEST(LatentCache, Float64DecodeIsExact) {
  at::NoGradGuard no_grad;
  for (const json& patch : cache_configs()) {
    ModelConfig c = tiny_config(patch);
    DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
    at::Tensor ids = random_ids(2, 14, c.vocab_size, 12);
    EXPECT_LT(max_abs_diff(incremental_logits(m, ids, 4), m.forward(ids)), 1e-10) << patch.dump();
  }
}

TEST(LatentCache, ChunksInEitherFormEqualFullForward) {
  at::NoGradGuard no_grad;
  ModelConfig c = tiny_config(cache_configs()[1]);
  DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
  at::Tensor ids = random_ids(1, 16, c.vocab_size, 13);
  at::Tensor full = m.forward(ids);
  for (AttentionForm form : {AttentionForm::kNaive, AttentionForm::kAbsorbed}) {
    LatentCache cache = m.make_cache(1, 16);
    at::Tensor a = m.forward(ids.narrow(1, 0, 6), {}, &cache, form);
    at::Tensor b = m.forward(ids.narrow(1, 6, 7), {}, &cache, form);  // a multi-token chunk
    at::Tensor d = m.forward(ids.narrow(1, 13, 3), {}, &cache, form);
    EXPECT_LT(max_abs_diff(at::cat({a, b, d}, 1), full), 1e-10);
  }
  // Absorbed attention without a cache is the same function too.
  EXPECT_LT(max_abs_diff(m.forward(ids, {}, nullptr, AttentionForm::kAbsorbed), full), 1e-10);
}

TEST(LatentCache, HoldsOnlyLatentAndRopeKey) {
  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c);
  LatentCache cache = m.make_cache(3, 10);
  EXPECT_EQ(cache.values_per_token(), c.kv_lora_rank + c.qk_rope_head_dim);  // 12 + 8, not 2·H·(nope+v)
  ASSERT_EQ(cache.num_layers(), c.num_hidden_layers);
  int64_t total = 0;
  for (int64_t l = 0; l < cache.num_layers(); ++l) {
    EXPECT_EQ(cache.c_kv(l).sizes(), (std::vector<int64_t>{3, 10, c.kv_lora_rank}));
    EXPECT_EQ(cache.k_rope(l).sizes(), (std::vector<int64_t>{3, 10, c.qk_rope_head_dim}));
    total += cache.c_kv(l).numel() + cache.k_rope(l).numel();
  }
  EXPECT_EQ(total, c.num_hidden_layers * 3 * 10 * (c.kv_lora_rank + c.qk_rope_head_dim));

  // What is cached is the normed latent and the rotated rope key of each position.
  at::NoGradGuard no_grad;
  at::Tensor ids = random_ids(3, 4, c.vocab_size);
  m.forward(ids, {}, &cache);
  EXPECT_EQ(cache.length(), 4);
  at::Tensor latent = cache.c_kv(0).narrow(1, 0, 4);  // kv_a_layernorm with weight 1: RMS 1
  EXPECT_LT(max_abs_diff(latent.pow(2).mean(-1), at::ones({3, 4})), 1e-3);
  EXPECT_EQ(cache.c_kv(0).narrow(1, 4, 6).abs().max().item<float>(), 0.0f);
}

TEST(LatentCache, OverflowIsAnInputErrorAndChangesNothing) {
  at::NoGradGuard no_grad;
  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c);
  LatentCache cache = m.make_cache(1, 5);
  m.forward(random_ids(1, 4, c.vocab_size), {}, &cache);
  try {
    m.forward(random_ids(1, 2, c.vocab_size), {}, &cache);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("capacity of 5"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.length(), 4);
}

}  // namespace
