// The demo (`make demo`, configs/tiny-zero.yaml), shortened and seeded: `grpo synth-task` makes
// train and held-out prompt sets, `grpo pretrain` makes a base model from the demo config, `grpo
// train` runs GRPO on it with the in-process reward and rollout services, and the held-out accuracy
// and reward the run logs in metrics.jsonl must rise clearly while the responses grow longer (the
// policy learns to answer step by step). The chains are shorter than the demo's (4 digits instead
// of 6) so that the base learns its step skill in 1500 pretraining steps instead of 5000.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"

using grpo_test::CliResult;
using nlohmann::json;

namespace {

class TinyZero : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "grpo_demo_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);  // kept for a look when the test fails
  }
  CliResult run(const std::string& args) const { return grpo_test::run_grpo_in_source(args, dir_); }

  std::string dir_;
};

TEST_F(TinyZero, GrpoLiftsHeldOutAccuracyOfAPretrainedBase) {
  const std::string task = " --min-terms 4 --max-terms 4 ";
  CliResult r = run("synth-task --task digit_chains --split train --n 400 --seed 1" + task + "--out " + dir_ +
                    "/train.jsonl");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("synth-task --task digit_chains --split heldout --n 64 --seed 2" + task + "--out " + dir_ + "/heldout.jsonl");
  ASSERT_EQ(r.code, 0) << r.err;

  const std::string base = dir_ + "/base";
  r = run("pretrain --config configs/tiny-zero.yaml --quiet pretrain.corpus.digit_chains.min_terms=4 "
          "pretrain.corpus.digit_chains.max_terms=4 pretrain.steps=1500 pretrain.seq_len=64 pretrain.out_dir=" +
          base + " pretrain.log_dir=" + dir_ + "/pretrain");
  ASSERT_EQ(r.code, 0) << r.err;

  const std::string out = dir_ + "/grpo";
  r = run("train configs/tiny-zero.yaml model.path=" + base + " run.out_dir=" + out + " data.train.path=" + dir_ +
          "/train.jsonl data.heldout.path=" + dir_ +
          "/heldout.jsonl train.steps=20 train.eval_every=20 train.eval_limit=64 train.checkpoint_every=20");
  ASSERT_EQ(r.code, 0) << r.err;

  // The held-out evaluations at step 0 (the base) and step 20 (the end).
  std::vector<json> evals;
  std::ifstream metrics(out + "/metrics.jsonl");
  ASSERT_TRUE(metrics) << out << "/metrics.jsonl";
  for (std::string line; std::getline(metrics, line);) {
    json j = json::parse(line);
    if (j.contains("eval/accuracy")) evals.push_back(std::move(j));
  }
  ASSERT_EQ(evals.size(), 2u) << r.err;
  EXPECT_EQ(evals.front()["step"], 0);
  EXPECT_EQ(evals.back()["step"], 20);
  const double acc0 = evals.front()["eval/accuracy"], acc1 = evals.back()["eval/accuracy"];
  const double reward0 = evals.front()["eval/reward"], reward1 = evals.back()["eval/reward"];
  const double len0 = evals.front()["eval/response_length"], len1 = evals.back()["eval/response_length"];
  // The base answers directly and is mostly wrong, but not always.
  EXPECT_GT(acc0, 0.05);
  EXPECT_LT(acc0, 0.6);
  // Measured on 2 cores: accuracy 0.30 -> 1.0, length 5 -> 12 tokens (direct answer -> steps).
  EXPECT_GT(acc1, acc0 + 0.3) << "held-out accuracy " << acc0 << " -> " << acc1;
  EXPECT_GT(reward1, reward0 + 0.3) << "held-out reward " << reward0 << " -> " << reward1;
  EXPECT_GT(len1, len0 + 3) << "held-out response length " << len0 << " -> " << len1;
}

}  // namespace
