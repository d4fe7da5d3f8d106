// HF checkpoint load/save: the HF-written fixture, raw bit-exact round trips, sharding, FP8 saving,
// and bad checkpoints reported with file and tensor named.
#include "model/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/fp8.h"
#include "model_ckpt_testutil.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ckpt_test::TempDir;

const std::string kTiny = std::string(GRPO_TEST_DATA) + "/dsv3-tiny";

nlohmann::json tiny_config() {
  std::ifstream in(kTiny + "/config.json");
  return nlohmann::json::parse(in);
}

TEST(Checkpoint, LoadsTheHfFixture) {
  auto w = load_weights(kTiny);
  ASSERT_TRUE(w.count("model.embed_tokens.weight"));
  EXPECT_EQ(w.at("model.embed_tokens.weight").sizes(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(w.at("model.embed_tokens.weight").scalar_type(), at::kFloat);
  EXPECT_TRUE(w.count("lm_head.weight"));
  auto bf = load_weights(kTiny, at::kBFloat16);
  EXPECT_EQ(bf.at("lm_head.weight").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(bf.at("lm_head.weight"), w.at("lm_head.weight").to(at::kBFloat16)));
}

TEST(Checkpoint, SaveWeightsThenLoadWeightsF32IsExact) {
  TempDir tmp;
  auto w = load_weights(kTiny);
  const std::string out = tmp / "ckpt";
  save_weights(out, w, tiny_config());
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  auto back = load_weights(out);
  ASSERT_EQ(back.size(), w.size());
  for (const auto& [name, t] : w) EXPECT_TRUE(at::equal(back.at(name), t)) << name;
}

TEST(Checkpoint, SaveWeightsBf16StoresBf16) {
  TempDir tmp;
  auto w = load_weights(kTiny);
  save_weights(tmp / "ckpt", w, tiny_config(), SaveOptions{5LL << 30, DType::BF16});
  auto raw = load_checkpoint_raw(tmp / "ckpt");
  EXPECT_EQ(raw.at("lm_head.weight").dtype, DType::BF16);
  auto back = load_weights(tmp / "ckpt", at::kBFloat16);
  EXPECT_TRUE(at::equal(back.at("lm_head.weight"), w.at("lm_head.weight").to(at::kBFloat16)));
  std::ifstream in(tmp / "ckpt/config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["dtype"], "bfloat16");
}

}  // namespace
}  // namespace grpo
