// The GRPO loop under expert parallelism, end to end: `grpo learner --nproc 2 --job grpo` against
// `grpo train` on the same run config (a tiny random DeepSeek-V3 with 8 routed experts, in-process
// reward and rollout servers on loopback, a real RocksDB store, sharded checkpoints):
// * the two ranks train what one process trains: every step's loss, KL-free policy loss and
//   gradient norm, and the final checkpoint's weights, agree to 1e-4;
// * both checkpoints carry the run's tokenizer files (rank 0 writes them);
// * rank 1 streams exactly its routed experts (4..7 of every MoE layer) to the rollout worker every
//   step; the checkpoint holds both ranks' optimizer state;
// * a run stopped after step 1 and started again resumes from its checkpoint and ends where the
//   uninterrupted one does;
// * rank 1 killed mid-run makes rank 0 stop with an error naming the failed collective; started
//   again, the run resumes from its last checkpoint and finishes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"
#include "learner_ep_testutil.h"
#include "learner_run_testutil.h"
#include "model/checkpoint.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

class EpGrpo : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("grpo_ep_grpo_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    testing::write_tiny_run_inputs(root_);
    std::ofstream(root_ / "run.yaml")
        << "run: {name: t, seed: 3, threads: 1}\n"
           "model: {path: "
        << (root_ / "model").string()
        << "}\n"
           "template: "
        << GRPO_SOURCE_DIR
        << "/configs/chat_templates/chatml-think.yaml\n"
           "data:\n  train: {path: "
        << (root_ / "train.jsonl").string()
        << "}\n"
           "reward: {config: "
        << GRPO_SOURCE_DIR
        << "/configs/reward.yaml, verifier: shaped}\n"
           "rollout: {workers: 1, group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 12}}\n"
           "train: {steps: 2, prompts_per_step: 3, checkpoint_every: 1}\n"
           "trainer: {lr: 0.001, micro_batch_size: 3, mini_batches: 2, threads: 1, bias_update_gamma: 0.001}\n";
  }
  void TearDown() override { fs::remove_all(root_); }

  // `grpo ARGS run.yaml run.out_dir=OUT ...`.
  grpo_test::CliResult grpo(const std::string& args, const std::string& out, const std::string& extra = "") const {
    return grpo_test::run_grpo(
        args + " " + (root_ / "run.yaml").string() + " run.out_dir=" + (root_ / out).string() + " " + extra,
        root_.string());
  }
  // The same, which must succeed; its stdout.
  std::string run(const std::string& args, const std::string& out, const std::string& extra = "") const {
    const grpo_test::CliResult r = grpo(args, out, extra);
    EXPECT_EQ(r.code, 0) << args << " -> " << out << "\n" << r.err;
    return r.out;
  }
  // `grpo learner` on 2 local ranks with a rendezvous port nobody uses.
  static std::string learner_args() {
    return "learner --nproc 2 --job grpo --quiet --timeout 60 --master-port " + std::to_string(testing::free_port());
  }
  std::vector<nlohmann::json> metrics(const std::string& out) const {
    std::stringstream text;
    text << std::ifstream(root_ / out / "metrics.jsonl").rdbuf();
    std::vector<nlohmann::json> steps;
    for (const auto& j : grpo_test::json_lines(text.str()))
      if (j.contains("train/loss")) steps.push_back(j);
    return steps;
  }
  std::map<std::string, at::Tensor> final_weights(const std::string& out) const {
    return load_weights((root_ / out / "checkpoints" / "step-000002").string());
  }

  fs::path root_;
};

double max_diff(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, t] : a) {
    if (!b.count(name)) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    worst = std::max(worst, (t - b.at(name)).abs().max().item<double>());
  }
  return worst;
}

TEST_F(EpGrpo, TwoRanksTrainWhatOneProcessTrainsAndResume) {
  run("train --quiet", "one");
  const std::string summary = run(learner_args(), "ep");
  EXPECT_NE(summary.find("\"world_size\":2"), std::string::npos) << summary;

  const auto one = metrics("one"), ep = metrics("ep");
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(ep.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    for (const char* key :
         {"train/loss", "train/policy_loss", "train/grad_norm_mean", "train/entropy", "reward/mean"}) {
      const double want = one[i].at(key).get<double>();
      EXPECT_NEAR(ep[i].at(key).get<double>(), want, 1e-4 * std::max(1.0, std::abs(want))) << key << " step " << i + 1;
    }
  EXPECT_LT(max_diff(final_weights("ep"), final_weights("one")), 1e-4);

  // Rank 1 published its experts 4..7 of the 2 MoE layers (3 matrices each) every step, nothing else.
  for (const auto& m : ep) {
    EXPECT_EQ(m.at("sync/rank1/tensors").get<double>(), 2 * 4 * 3) << m.dump();
    EXPECT_GT(m.at("sync/rank0/tensors").get<double>(), m.at("sync/rank1/tensors").get<double>());
  }
  for (int r = 0; r < 2; ++r)
    EXPECT_TRUE(fs::exists(root_ / "ep" / "checkpoints" / "step-000002" /
                           ("rank-" + std::to_string(r) + "-state.safetensors")));
  // Rank 0 adds the run's tokenizer files, as one process does: the checkpoint loads on its own.
  auto slurp = [](const fs::path& p) {
    std::stringstream text;
    text << std::ifstream(p, std::ios::binary).rdbuf();
    return text.str();
  };
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    const fs::path ep_file = root_ / "ep" / "checkpoints" / "step-000002" / f;
    ASSERT_TRUE(fs::exists(ep_file)) << f;
    EXPECT_EQ(slurp(ep_file), slurp(root_ / "one" / "checkpoints" / "step-000002" / f)) << f;
  }
  EXPECT_EQ(slurp(root_ / "ep" / "checkpoints" / "step-000002" / "tokenizer.json"),
            slurp(root_ / "model" / "tokenizer.json"));

  // Stopped after step 1, then started again for 2 steps: it resumes and ends where "ep" ended.
  run(learner_args(), "resumed", "train.steps=1");
  const std::string resumed = run(learner_args(), "resumed");
  EXPECT_NE(resumed.find("\"start_step\":1"), std::string::npos) << resumed;
  EXPECT_LT(max_diff(final_weights("resumed"), final_weights("ep")), 1e-6);

  // Resuming takes the same number of ranks: one process refuses the 2-rank checkpoints, naming
  // why, rather than start over on the steps the store holds.
  const grpo_test::CliResult single = grpo("train --quiet", "ep");
  EXPECT_NE(single.code, 0);
  EXPECT_NE(single.err.find("none of the 2 checkpoints"), std::string::npos) << single.err;
  EXPECT_NE(single.err.find("saved by 2 expert-parallel ranks"), std::string::npos) << single.err;
}

TEST_F(EpGrpo, AKilledRankStopsRankZeroAndTheRunResumes) {
  testing::kill_rank_one_when(std::string(GRPO_BINARY) + " learner --job grpo --quiet --timeout 20 " +
                                  (root_ / "run.yaml").string() + " run.out_dir=" + (root_ / "faulty").string() +
                                  " train.steps=8",
                              (root_ / "faulty" / "checkpoints" / "step-000002").string());
  if (HasFatalFailure()) return;

  const grpo_test::CliResult again = grpo(learner_args(), "faulty", "train.steps=8");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("train: resuming from"), std::string::npos) << again.err;
  const nlohmann::json summary = nlohmann::json::parse(again.out);
  EXPECT_GE(summary.at("start_step").get<int>(), 2);
  EXPECT_EQ(summary.at("steps_done").get<int>(), 8);
}

TEST_F(EpGrpo, AConfigWithBothJobsNeedsJob) {
  std::ofstream(root_ / "run.yaml", std::ios::app) << "pretrain: {steps: 1}\n";
  const grpo_test::CliResult r = grpo("learner --nproc 2", "both");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("choose the job with --job pretrain or --job grpo"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace grpo
