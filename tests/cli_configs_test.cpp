// Every YAML file under configs/ loads with the real loader of each command it is for, through the
// grpo binary run from another directory (`--dry-run`: the options parsers and the input file
// checks, nothing trained; chat templates: `grpo chat-template`), so relative paths resolve
// against the config file's directory. A file under configs/ missing from the table fails. Each
// recipe also trains two steps on a tiny model, its sizes and inputs overridden on the command line.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "grpo_cli.h"
#include "model/init.h"
#include "model/pretrained.h"
#include "model_test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kConfigs = std::string(GRPO_SOURCE_DIR) + "/configs/";
const std::string kMath = std::string(GRPO_TEST_DATA) + "/math/";

// configs/FILE -> the commands that read it (with the flags that pick the job).
const std::map<std::string, std::vector<std::string>> kCommands = {
    {"chat_templates/chatml-think.yaml", {"chat-template"}},
    {"chat_templates/tiny-zero.yaml", {"chat-template"}},
    {"distill-tiny.yaml", {"distill"}},
    {"recipes/dsv2-lite-r1zero-gsm8k.yaml", {"train", "learner"}},
    {"recipes/dsv2-lite-r1zero-math.yaml", {"train", "learner"}},
    {"reward.yaml", {"reward-server"}},
    {"rollout.yaml", {"rollout-server"}},
    {"sft-tiny.yaml", {"sft"}},
    {"tiny-zero.yaml", {"pretrain", "train", "learner --job grpo", "learner --job pretrain"}},
};

// Inputs a config names that are not shipped (a model to download, run outputs, data sets):
// overrides pointing at test copies. `model` is a tiny checkpoint directory.
std::string stand_ins(const std::string& file, const std::string& model) {
  if (file.rfind("recipes/", 0) == 0) {
    const bool gsm8k = file.find("gsm8k") != std::string::npos;
    return " model.path=" + model + " data.train.path=" + kMath +
           (gsm8k ? "gsm8k_test.jsonl" : "math_train_shape.jsonl") + " data.heldout.path=" + kMath +
           (gsm8k ? "gsm8k_test.jsonl" : "math500.jsonl");
  }
  if (file == "tiny-zero.yaml" || file == "distill-tiny.yaml") return " model.path=" + model;
  return "";
}

class Configs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new grpo_test::ScratchDir("grpo_cli_configs");
    // A tiny random DeepSeek-V3 with the bpe-tokenizer vocabulary and room for a recipe's prompts.
    grpo::DeepseekModel m(grpo::testing::tiny_config(
        {{"vocab_size", 3000}, {"initializer_range", 0.02}, {"max_position_embeddings", 1024}}));
    grpo::init_weights(m, 5);
    grpo::save_pretrained(m, model());
    fs::copy_file(std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/tokenizer.json", model() + "/tokenizer.json");
  }
  static void TearDownTestSuite() { delete scratch_; }
  static std::string model() { return scratch_->path() + "/model"; }
  // `grpo ARGS` in the scratch directory (not the source root).
  static grpo_test::CliResult run(const std::string& args) {
    return grpo_test::run_grpo(args, scratch_->path(), "", scratch_->path());
  }

  static grpo_test::ScratchDir* scratch_;
};
grpo_test::ScratchDir* Configs::scratch_ = nullptr;

TEST_F(Configs, EveryFileIsInTheTable) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(kConfigs)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml"))
      files.push_back(fs::relative(e.path(), kConfigs).string());
  }
  ASSERT_GE(files.size(), kCommands.size());
  for (const auto& f : files) EXPECT_TRUE(kCommands.count(f)) << "configs/" << f << ": add it to kCommands";
  for (const auto& [f, commands] : kCommands) EXPECT_TRUE(fs::exists(kConfigs + f)) << f;
}

TEST_F(Configs, EveryFileLoadsWithItsCommandsLoader) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  for (const auto& [file, commands] : kCommands) {
    for (const std::string& command : commands) {
      SCOPED_TRACE(command + " configs/" + file);
      const std::string path = kConfigs + file;
      std::string args;
      if (command == "chat-template")
        args = "chat-template --template " + path;
      else if (command == "rollout-server")
        args = "rollout-server " + path + " --model " + model() + " --dry-run";
      else
        args = command + " " + path + " --dry-run" + stand_ins(file, model());
      const grpo_test::CliResult r = run(args);
      EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
      if (command != "chat-template") EXPECT_FALSE(r.out.empty());
      if (command == "train" || command.rfind("learner", 0) == 0)
        EXPECT_NE(r.out.find("# per step: "), std::string::npos) << r.out;
    }
  }
}

// Two steps of each recipe as written, but on a tiny model, a few prompts and short completions.
TEST_F(Configs, EachRecipeTrainsTwoSteps) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  for (const auto& [file, commands] : kCommands) {
    if (file.rfind("recipes/", 0) != 0) continue;
    SCOPED_TRACE(file);
    const std::string out = scratch_->path() + "/" + fs::path(file).stem().string();
    const grpo_test::CliResult r =
        run("train " + kConfigs + file + " --quiet" + stand_ins(file, model()) + " run.out_dir=" + out +
            " --threads 1 data.train.limit=8 train.steps=2 train.prompts_per_step=2 train.eval_every=2"
            " train.eval_limit=2 train.checkpoint_every=2 rollout.group_size=2 rollout.sampling.max_new_tokens=8"
            " rollout.engine.max_seqs=8 rollout.engine.num_pages=512 trainer.micro_batch_size=2"
            " trainer.warmup_steps=1");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("train: 2 steps done"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(fs::exists(out + "/checkpoints/step-000002/config.json")) << out;
  }
}

}  // namespace
