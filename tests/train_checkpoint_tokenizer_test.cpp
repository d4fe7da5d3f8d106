// Checkpoints that load on their own: a `grpo train` checkpoint carries the run's tokenizer files
// (tokenizer.json, tokenizer_config.json copied, generation_config.json with the bos/eos/pad ids)
// and `grpo eval`, `generate`, `rollout-server` and `distill` (as the teacher) take it with no
// --tokenizer; a tokenizer of another vocabulary (the tiny-zero one, 262 ids, with the 3000-row
// model) is refused naming both files and sizes instead of generating empty text.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"
#include "learner_run_testutil.h"
#include "subprocess.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace grpo {
namespace {

std::string slurp(const fs::path& path) {
  std::stringstream ss;
  ss << std::ifstream(path, std::ios::binary).rdbuf();
  return ss.str();
}

const std::string kTokenizerConfig =
    R"({"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>", "pad_token": "</think>"})";

class CheckpointTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new grpo_test::ScratchDir("grpo_ckpt_tok");
    const fs::path root = root_->path();
    testing::write_tiny_run_inputs(root);  // model/ with tokenizer.json
    std::ofstream(root / "model" / "tokenizer_config.json") << kTokenizerConfig;
    std::ofstream(root / "run.yaml") << "run: {name: t, seed: 3, threads: 1}\n"
                                     << "model: {path: " << (root / "model").string() << "}\n"
                                     << "template: " << GRPO_SOURCE_DIR << "/configs/chat_templates/chatml-think.yaml\n"
                                     << "data:\n  train: {path: " << (root / "train.jsonl").string() << "}\n"
                                     << "reward: {config: " << GRPO_SOURCE_DIR
                                     << "/configs/reward.yaml, verifier: shaped}\n"
                                     << "rollout: {workers: 1, group_size: 4, sampling: {max_new_tokens: 8}}\n"
                                     << "train: {steps: 1, prompts_per_step: 3}\n"
                                     << "trainer: {lr: 0.001, micro_batch_size: 6, mini_batches: 1, threads: 1}\n";
    train_ = new grpo_test::CliResult(
        grpo("train --quiet " + (root / "run.yaml").string() + " run.out_dir=" + (root / "run").string()));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete root_;
  }

  static grpo_test::CliResult grpo(const std::string& args) { return grpo_test::run_grpo(args, root_->path()); }
  static fs::path root() { return root_->path(); }
  static std::string checkpoint() { return (root() / "run" / "checkpoints" / "step-000001").string(); }

  static grpo_test::ScratchDir* root_;
  static grpo_test::CliResult* train_;
};
grpo_test::ScratchDir* CheckpointTokenizer::root_ = nullptr;
grpo_test::CliResult* CheckpointTokenizer::train_ = nullptr;

TEST_F(CheckpointTokenizer, TheCheckpointCarriesTheRunsTokenizerFiles) {
  ASSERT_EQ(train_->code, 0) << train_->err;
  const fs::path ckpt = checkpoint();
  EXPECT_EQ(slurp(ckpt / "tokenizer.json"), slurp(root() / "model" / "tokenizer.json"));
  EXPECT_EQ(slurp(ckpt / "tokenizer_config.json"), kTokenizerConfig);
  const json generation = json::parse(slurp(ckpt / "generation_config.json"));
  EXPECT_EQ(generation["bos_token_id"], 0) << generation;
  EXPECT_EQ(generation["eos_token_id"], 1) << generation;
  EXPECT_EQ(generation["pad_token_id"], 3) << generation;
  EXPECT_FALSE(fs::exists(checkpoint() + ".tmp"));
}

TEST_F(CheckpointTokenizer, EvalGenerateAndRolloutServerTakeItWithoutATokenizerFlag) {
  ASSERT_EQ(train_->code, 0) << train_->err;
  const grpo_test::CliResult eval =
      grpo("eval --model " + checkpoint() + " --data " + (root() / "train.jsonl").string() +
           " --limit 2 --max-new-tokens 4 --verifier math --format-verifier '' --threads 1 --quiet");
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_EQ(json::parse(eval.out)["samples"], 2) << eval.out;

  const grpo_test::CliResult gen = grpo("generate --model " + checkpoint() +
                                        " --prompt 'What is 2 + 2?' --max-new-tokens 4 --temperature 0 --threads 1");
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_TRUE(json::parse(gen.out).contains("text")) << gen.out;

  testing::Subprocess server(
      {GRPO_BINARY, "rollout-server", "--model", checkpoint(), "--address", "127.0.0.1:0", "--threads", "1"},
      "/dev/null");
  const std::string line = server.read_line(60'000);
  EXPECT_NE(line.find("tokenizer " + checkpoint() + "/tokenizer.json"), std::string::npos) << line;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(30'000), 0);
}

TEST_F(CheckpointTokenizer, DistillTakesItAsTheTeacher) {
  ASSERT_EQ(train_->code, 0) << train_->err;
  const grpo_test::CliResult r =
      grpo("distill --quiet " + (root() / "run.yaml").string() + " model.path=" + checkpoint() +
           " run.out_dir=" + (root() / "distill-run").string() + " data.train.limit=2");
  EXPECT_TRUE(r.code == 0 || r.code == 3) << r.err;  // 3: no sample accepted (a random model)
  EXPECT_TRUE(fs::exists(root() / "distill-run" / "distill" / "dataset_card.json")) << r.err;
}

TEST_F(CheckpointTokenizer, AnotherModelsTokenizerIsRefusedNamingBothFilesAndSizes) {
  ASSERT_EQ(train_->code, 0) << train_->err;
  const std::string tiny_zero = std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/tokenizer.json";
  // Each command exits with the error (run with a deadline: a server that started anyway is killed).
  for (const std::string cmd :
       {"eval --data " + (root() / "train.jsonl").string() + " --quiet",
        std::string("generate --prompt x --max-new-tokens 2"), std::string("rollout-server --address 127.0.0.1:0")}) {
    std::vector<std::string> argv = {GRPO_BINARY};
    std::istringstream words(cmd + " --model " + checkpoint() + " --tokenizer " + tiny_zero);
    for (std::string w; words >> w;) argv.push_back(w);
    testing::Subprocess p(argv, "/dev/null", /*merge_stderr=*/true);
    const int code = p.wait(60'000);
    EXPECT_GT(code, 0) << cmd << " (-1: still running)";
    if (code < 0) continue;  // the destructor kills it
    const std::string err = p.read_all();
    for (const std::string part :
         {checkpoint() + "/config.json", std::string("vocab_size 3000"), tiny_zero, std::string("262 ids")})
      EXPECT_NE(err.find(part), std::string::npos) << cmd << ": " << part << " in: " << err;
  }
  // A training run on a model with that tokenizer stops before it starts.
  const grpo_test::CliResult train =
      grpo("train --quiet " + (root() / "run.yaml").string() + " model.tokenizer=" + tiny_zero +
           " run.out_dir=" + (root() / "mismatch").string());
  EXPECT_NE(train.code, 0);
  EXPECT_NE(train.err.find("262 ids"), std::string::npos) << train.err;
}

}  // namespace
}  // namespace grpo
