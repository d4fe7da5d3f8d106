// config.json parsing: the fixture, HF 5.x rope_parameters vs hub rope_scaling, family defaults,
// and errors naming the file and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;
using nlohmann::json;

namespace {

std::string error_of(const json& j) {
  try {
    ModelConfig::from_json(j, "/x/config.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ReadsTheFixture) {
  ModelConfig c = ModelConfig::load(fixture_dir());
  EXPECT_EQ(c.family, ModelFamily::kDeepseekV3);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.q_lora_rank, 32);
  EXPECT_EQ(c.kv_lora_rank, 16);
  EXPECT_EQ(c.qk_head_dim(), 24);
  EXPECT_EQ(c.v_head_dim, 12);
  EXPECT_EQ(c.n_routed_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);  // V3 default
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_TRUE(c.rope_interleave);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_DOUBLE_EQ(c.softmax_scale(), 1.0 / std::sqrt(24.0));
}

TEST(ModelConfig, RopeScalingAndRopeParametersAgree) {
  json yarn = {{"factor", 40},    {"original_max_position_embeddings", 4096},
               {"beta_fast", 32}, {"beta_slow", 1},
               {"mscale", 1.0},   {"mscale_all_dim", 1.0}};
  json hub = yarn;
  hub["type"] = "yarn";
  json hf5 = yarn;
  hf5["rope_type"] = "yarn";
  hf5["rope_theta"] = 10000.0;
  ModelConfig a = tiny_config({{"rope_scaling", hub}, {"rope_theta", 10000.0}});
  ModelConfig b = tiny_config({{"rope_parameters", hf5}, {"rope_theta", nullptr}});
  for (const ModelConfig* c : {&a, &b}) {
    EXPECT_EQ(c->rope.type, "yarn");
    EXPECT_DOUBLE_EQ(c->rope.factor, 40.0);
    EXPECT_EQ(c->rope.original_max_position_embeddings, 4096);
    EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);
  }
  // DeepSeek-V3's softmax scale: qk_head_dim^-0.5 · (0.1 · ln 40 + 1)^2.
  double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(a.softmax_scale(), m * m / std::sqrt(16.0), 1e-15);
}

TEST(ModelConfig, FamilyDefaults) {
  json v2 = tiny_config_json({{"architectures", {"DeepseekV2ForCausalLM"}}, {"model_type", "deepseek_v2"}});
  for (const char* k :
       {"topk_method", "scoring_func", "norm_topk_prob", "routed_scaling_factor", "n_group", "topk_group",
        "first_k_dense_replace", "n_shared_experts", "rope_theta", "bos_token_id", "eos_token_id"})
    v2.erase(k);
  ModelConfig c = ModelConfig::from_json(v2, "v2");
  EXPECT_EQ(c.family, ModelFamily::kDeepseekV2);
  EXPECT_EQ(c.topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 1.0);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.first_k_dense_replace, 0);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_TRUE(c.rope_interleave);

  // A dense model: n_routed_experts null, no MoE keys needed.
  json dense = tiny_config_json({{"n_routed_experts", nullptr}});
  dense.erase("moe_intermediate_size");
  dense.erase("num_experts_per_tok");
  ModelConfig d = ModelConfig::from_json(dense, "dense");
  EXPECT_FALSE(d.is_moe_layer(1));
  // eos as a list.
  EXPECT_EQ(tiny_config({{"eos_token_id", {1, 5}}}).eos_token_ids, (std::vector<int64_t>{1, 5}));
}

TEST(ModelConfig, ErrorsNameFileAndKey) {
  json missing = tiny_config_json();
  missing.erase("kv_lora_rank");
  EXPECT_EQ(error_of(missing), "/x/config.json: key 'kv_lora_rank': missing (required)");
  json no_q = tiny_config_json();
  no_q.erase("q_lora_rank");
  EXPECT_EQ(error_of(no_q), "/x/config.json: key 'q_lora_rank': missing (required; null allowed)");
  EXPECT_EQ(error_of(tiny_config_json({{"hidden_size", "32"}})),
            "/x/config.json: key 'hidden_size': expected an integer, got a string");
  EXPECT_EQ(error_of(tiny_config_json({{"hidden_size", 32.5}})),
            "/x/config.json: key 'hidden_size': expected an integer, got a number");
  EXPECT_EQ(error_of(tiny_config_json({{"norm_topk_prob", 1}})),
            "/x/config.json: key 'norm_topk_prob': expected true or false, got an integer");
  EXPECT_EQ(error_of(tiny_config_json({{"architectures", {"LlamaForCausalLM"}}})),
            "/x/config.json: key 'architectures': unknown architecture 'LlamaForCausalLM' (expected "
            "DeepseekV2ForCausalLM or DeepseekV3ForCausalLM)");
  EXPECT_EQ(error_of(tiny_config_json({{"model_type", "llama"}})),
            "/x/config.json: key 'model_type': unknown model_type 'llama' (expected deepseek_v2 or deepseek_v3)");
  EXPECT_EQ(error_of(tiny_config_json({{"topk_method", "best"}})),
            "/x/config.json: key 'topk_method': unknown value 'best' (expected greedy, group_limited_greedy or "
            "noaux_tc)");
  EXPECT_EQ(error_of(tiny_config_json({{"rope_scaling", {{"type", "dynamic"}, {"factor", 2}}}})),
            "/x/config.json: key 'rope_scaling.rope_type': unsupported rope type 'dynamic' (expected default or "
            "yarn)");
  EXPECT_EQ(error_of(tiny_config_json({{"rope_parameters", {{"rope_type", "yarn"}, {"factor", "big"}}}})),
            "/x/config.json: key 'rope_parameters.factor': expected a number, got a string");
  EXPECT_EQ(error_of(tiny_config_json({{"n_group", 3}})),
            "/x/config.json: key 'n_group': must divide n_routed_experts (8)");
  EXPECT_EQ(error_of(tiny_config_json({{"num_key_value_heads", 1}})),
            "/x/config.json: key 'num_key_value_heads': MLA needs num_key_value_heads == num_attention_heads");
  EXPECT_EQ(error_of(json::array()), "/x/config.json: expected a JSON object");
}

TEST(ModelConfig, UnreadableOrTruncatedFile) {
  std::string dir = ::testing::TempDir() + "/grpo_cfg_test";
  std::filesystem::create_directories(dir);
  std::string text = tiny_config_json().dump();
  std::ofstream(dir + "/config.json") << text.substr(0, text.size() / 2);
  try {
    ModelConfig::load(dir);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir + "/config.json: invalid JSON:", 0), 0u) << e.what();
  }
  std::filesystem::remove_all(dir);
  try {
    ModelConfig::load(dir);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": cannot open model config");
  }
}

}  // namespace
