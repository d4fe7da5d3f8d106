// The demo (`make demo`, configs/tiny-zero.yaml), shortened and seeded, and the distillation loop
// it feeds, end to end through the grpo binary:
//  * `grpo synth-task` makes train and held-out prompt sets and `grpo pretrain` a base model from
//    the demo config, once for the suite. The chains are shorter than the demo's (4 digits
//    instead of 6) so that the base learns its step skill in 2500 pretraining steps, not 5000
//    (with 1500 it formed or not depending on the last bits of the rollouts' numerics: this test
//    passed before the CPU kernels of kernels/ and failed with them, held-out accuracy 0.25 ->
//    0.41 after 20 GRPO steps; with 2500 steps, 0.30 -> 0.98).
//  * GRPO (`grpo train`, in-process reward and rollout services) must lift the held-out accuracy
//    and reward it logs in metrics.jsonl clearly, while the answers grow longer (the policy learns
//    to answer step by step).
//  * `grpo distill` from the base (right about 2/3 of the time at temperature 1), then `grpo sft`
//    of the same dense student on the filtered set and on as many unfiltered samples, then `grpo
//    eval`: the student taught by the filtered set must be the better one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"

using grpo_test::CliResult;
using nlohmann::json;

namespace {

class TinyZero : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = std::make_unique<grpo_test::ScratchDir>("grpo_demo");
    const std::string task = " --min-terms 4 --max-terms 4 ";
    base_made_ =
        run("synth-task --task digit_chains --split train --n 400 --seed 1" + task + "--out " + path("train.jsonl"));
    if (base_made_.code != 0) return;
    base_made_ =
        run("synth-task --task digit_chains --split heldout --n 64 --seed 2" + task + "--out " + path("heldout.jsonl"));
    if (base_made_.code != 0) return;
    base_made_ =
        run("pretrain --config configs/tiny-zero.yaml --quiet pretrain.corpus.digit_chains.min_terms=4 "
            "pretrain.corpus.digit_chains.max_terms=4 pretrain.steps=2500 pretrain.seq_len=64 "
            "pretrain.out_dir=" +
            path("base") + " pretrain.log_dir=" + path("pretrain"));
  }
  static void TearDownTestSuite() { scratch_.reset(); }
  void SetUp() override { ASSERT_EQ(base_made_.code, 0) << base_made_.err; }

  static std::string path(const std::string& name) { return scratch_->path() + "/" + name; }
  static CliResult run(const std::string& args) { return grpo_test::run_grpo_in_source(args, scratch_->path()); }

  static std::unique_ptr<grpo_test::ScratchDir> scratch_;
  static CliResult base_made_;
};
std::unique_ptr<grpo_test::ScratchDir> TinyZero::scratch_;
CliResult TinyZero::base_made_;

TEST_F(TinyZero, GrpoLiftsHeldOutAccuracyOfThePretrainedBase) {
  const std::string out = path("grpo");
  CliResult r = run("train configs/tiny-zero.yaml --quiet model.path=" + path("base") + " run.out_dir=" + out +
                    " data.train.path=" + path("train.jsonl") + " data.heldout.path=" + path("heldout.jsonl") +
                    " train.steps=20 train.eval_every=20 train.eval_limit=64 train.checkpoint_every=20");
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

TEST_F(TinyZero, StudentOfTheFilteredDistillationSetBeatsOneOfUnfilteredSamples) {
  // 4 samples of each training prompt from the base, scored by the r1 verifier; one kept per prompt.
  const std::string sample = "distill configs/distill-tiny.yaml --quiet model.path=" + path("base") +
                             " data.train.path=" + path("train.jsonl") + " distill.out=" + path("distill") +
                             " run.out_dir=" + path("distill-run") +
                             " rollout.group_size=4 rollout.sampling.max_new_tokens=32 distill.per_prompt_cap=1";
  CliResult r = run(sample);
  ASSERT_EQ(r.code, 0) << r.err;
  std::filesystem::rename(path("distill/distill.jsonl"), path("filtered.jsonl"));
  // The same store exported with every filter off: each prompt's first sample, right or wrong.
  r = run(sample +
          " --export-only distill.filters.correct_only=false distill.filters.require_format=false "
          "distill.filters.drop_truncated=false distill.filters.answer_tags=false distill.filters.dedupe=false");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> filtered, unfiltered;
  for (auto [file, rows] :
       {std::pair{path("filtered.jsonl"), &filtered}, {path("distill/distill.jsonl"), &unfiltered}}) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) rows->push_back(line);
  }
  ASSERT_EQ(unfiltered.size(), 400u);
  ASSERT_GT(filtered.size(), 200u);  // measured: 348 (52 prompts had no correct sample)
  ASSERT_LT(filtered.size(), 400u);
  std::ofstream same_size(path("unfiltered.jsonl"));
  for (size_t i = 0; i < filtered.size(); ++i) same_size << unfiltered[i] << "\n";
  same_size.close();

  // The same student, seed and steps on each set; greedy held-out accuracy.
  std::map<std::string, json> metrics;
  for (const std::string set : {"filtered", "unfiltered"}) {
    r = run("sft --config configs/sft-tiny.yaml --quiet sft.data.files=[" + path(set + ".jsonl") +
            "] sft.epochs=40 sft.optim.lr=1.0e-3 sft.out_dir=" + path(set + "-student") +
            " sft.log_dir=" + path(set + "-sft"));
    ASSERT_EQ(r.code, 0) << r.err;
    r = run("eval --model " + path(set + "-student") + " --data " + path("heldout.jsonl") +
            " --template configs/chat_templates/tiny-zero.yaml --verifier r1 --reward-config configs/reward.yaml "
            "--temperature 0 --max-new-tokens 32 --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    metrics[set] = json::parse(r.out)["metrics"];
  }
  // Measured with sft.seed 1 / 2 / 3: pass@1 0.77 / 0.72 / 0.77 vs 0.36 / 0.34 / 0.48; tokens
  // 10.8 / 10.4 / 10.7 vs 7.9 / 8.6 / 9.2 (the filtered set teaches the step style, which is right
  // far more often than a direct guess). At sft-tiny's lr 3e-3 the student did not fit its own set
  // (loss ~0.5 a token, 20 % of its training prompts right) and which set won was chance.
  const double filtered_acc = metrics["filtered"]["pass@1"], unfiltered_acc = metrics["unfiltered"]["pass@1"];
  EXPECT_GT(filtered_acc, 0.5) << metrics["filtered"];  // the student learned the step skill itself
  EXPECT_GT(filtered_acc, unfiltered_acc + 0.15) << metrics["filtered"] << "\n" << metrics["unfiltered"];
  EXPECT_GT(metrics["filtered"]["mean_response_tokens"].get<double>(),
            metrics["unfiltered"]["mean_response_tokens"].get<double>() + 1)
      << metrics["filtered"] << "\n"
      << metrics["unfiltered"];
}

}  // namespace
