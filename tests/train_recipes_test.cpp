// configs/recipes/*.yaml: every recipe parses, names a known chat template and an existing reward
// config, and its data sections load with dataset/prompt_dataset.h against the copies of the
// datasets in tests/data (the recipes point at data/<file>; the table below says which copy
// stands in for each file; a recipe naming a file not in it fails here).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/config.h"
#include "dataset/prompt_dataset.h"
#include "tokenizer/chat_template.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;

const std::string kMath = std::string(GRPO_TEST_DATA) + "/math/";

// Recipe data file -> the test copy with the same format and fields.
const std::map<std::string, std::string> kCopies = {
    {"gsm8k_train.jsonl", kMath + "gsm8k_test.jsonl"},  // the train split is 4.2 MB; same fields
    {"gsm8k_test.jsonl", kMath + "gsm8k_test.jsonl"},
    {"math500.jsonl", kMath + "math500.jsonl"},
    {"math_train.jsonl", kMath + "math_train_shape.jsonl"},
    {"aime24.jsonl", kMath + "aime24.jsonl"},
    {"amc23.jsonl", kMath + "amc23.jsonl"},
};

std::vector<std::string> recipes() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(std::string(GRPO_SOURCE_DIR) + "/configs/recipes"))
    if (e.path().extension() == ".yaml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Recipes, DataSectionsLoadAndTemplatesAndRewardConfigsExist) {
  const auto files = recipes();
  ASSERT_GE(files.size(), 2u);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    Config cfg = Config::load(file);
    for (const std::string& key : {"run", "model", "template", "data", "reward", "rollout", "train", "trainer"})
      EXPECT_TRUE(cfg.has(key)) << key;
    EXPECT_NO_THROW(ChatTemplate::load(cfg.get<std::string>("template")));
    EXPECT_TRUE(fs::exists(cfg.get_path("reward.config")));  // relative to the recipe's directory
    // The overlong penalty and the generation budget agree (the r1 composite's max_len is 4096).
    EXPECT_EQ(cfg.get<int64_t>("rollout.sampling.max_new_tokens"), 4096);

    for (const std::string& split : {"data.train", "data.heldout"}) {
      SCOPED_TRACE(split);
      PromptDatasetSpec spec = prompt_dataset_spec_from_config(cfg.sub(split));
      const std::string name = fs::path(spec.path).filename().string();
      auto copy = kCopies.find(name);
      ASSERT_NE(copy, kCopies.end()) << "no test copy for " << name << ": add one to tests/data and kCopies";
      spec.path = copy->second;
      PromptDatasetReport report;
      std::vector<PromptItem> items = load_prompt_dataset(spec, &report);
      EXPECT_GT(items.size(), 0u);
      EXPECT_EQ(report.skipped, 0);
      for (const PromptItem& it : items) {
        EXPECT_FALSE(it.prompt.empty());
        EXPECT_FALSE(it.reference.empty()) << it.id;
        EXPECT_EQ(it.verifier, "");  // math recipes: the run's verifier (reward.verifier)
      }
    }
  }
}

}  // namespace
}  // namespace grpo
