// `grpo train --dry-run` (alias --print-config) prints the resolved config with its defaults and
// what the run costs, and trains nothing; the run directory keeps the resolved config, and a
// resumed run with other settings is refused (each change listed) unless --allow-config-change;
// train.steps and threads may change. Through the grpo binary on a tiny model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "grpo_cli.h"
#include "learner_run_testutil.h"

namespace fs = std::filesystem;

namespace {

class DryRun : public ::testing::Test {
 protected:
  void SetUp() override {
    grpo::testing::write_tiny_run_inputs(scratch_.path());
    std::ofstream(scratch_.path() + "/run.yaml")
        << "run: {name: t, seed: 3, threads: 1, out_dir: " << out() << "}\n"
        << "model: {path: model}\n"  // relative: next to run.yaml
        << "template: " << GRPO_SOURCE_DIR << "/configs/chat_templates/chatml-think.yaml\n"
        << "data:\n  train: {path: train.jsonl}\n"
        << "reward: {config: " << GRPO_SOURCE_DIR << "/configs/reward.yaml, verifier: shaped}\n"
        << "rollout: {workers: 1, group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 6}}\n"
        << "train: {steps: 1, prompts_per_step: 3, checkpoint_every: 1}\n"
        << "trainer: {lr: 0.001, micro_batch_size: 6, threads: 1}\n";
  }
  std::string out() const { return scratch_.path() + "/out"; }
  grpo_test::CliResult train(const std::string& extra) const {
    return grpo_test::run_grpo("train " + scratch_.path() + "/run.yaml --quiet " + extra, scratch_.path());
  }

  grpo_test::ScratchDir scratch_{"grpo_cli_dry_run"};
};

TEST_F(DryRun, PrintsTheResolvedConfigAndTheCostAndTrainsNothing) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const grpo_test::CliResult r = train("--dry-run");
  ASSERT_EQ(r.code, 0) << r.err;
  // Defaults the file does not set, as the parsers read them.
  EXPECT_NE(r.out.find("keep_checkpoints: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max_refill_rounds: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clip_high: 0.2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# run directory: " + out() + " (a new run)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# model: " + scratch_.path() + "/model: "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(": 0 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# data.train: 12 prompts"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# per step: 3 prompts x 4 = 12 sequences, at most 72 generated tokens"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("# in all: 1 steps, 12 sequences"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out()));
  const grpo_test::CliResult alias = train("--print-config");
  EXPECT_EQ(alias.code, 0) << alias.err;
  EXPECT_EQ(alias.out, r.out);
}

TEST_F(DryRun, RunDeviceIsCheckedBeforeAnythingRuns) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const grpo_test::CliResult r = train("--dry-run");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("device: auto"), std::string::npos) << r.out;
  const grpo_test::CliResult bad = train("--dry-run run.device=gpu");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("key 'run.device': expected cpu, cuda, cuda:N or auto, got \"gpu\""), std::string::npos)
      << bad.err;
  // ctest hides the GPUs (tests/CMakeLists.txt): cuda names a device that is not there.
  const grpo_test::CliResult none = train("--dry-run run.device=cuda:1");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("key 'run.device': cuda:1, but no CUDA device is visible"), std::string::npos) << none.err;
  EXPECT_FALSE(fs::exists(out()));
}

TEST_F(DryRun, ResumeWithOtherSettingsIsRefusedUnlessAllowed) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const grpo_test::CliResult first = train("");
  ASSERT_EQ(first.code, 0) << first.err;
  std::stringstream saved;
  saved << std::ifstream(out() + "/config.yaml").rdbuf();
  EXPECT_NE(saved.str().find("max_refill_rounds: 3"), std::string::npos) << saved.str();  // with its defaults

  const grpo_test::CliResult changed = train("train.steps=2 trainer.lr=0.002 rollout.group_size=2");
  EXPECT_EQ(changed.code, 2);
  EXPECT_NE(changed.err.find("rollout.group_size: 4 -> 2"), std::string::npos) << changed.err;
  EXPECT_NE(changed.err.find("trainer.lr: 0.001 -> 0.002"), std::string::npos) << changed.err;
  EXPECT_NE(changed.err.find("--allow-config-change"), std::string::npos) << changed.err;
  EXPECT_EQ(changed.err.find("train.steps"), std::string::npos) << changed.err;  // may be extended
  EXPECT_TRUE(fs::exists(out() + "/checkpoints/step-000001"));
  EXPECT_FALSE(fs::exists(out() + "/checkpoints/step-000002"));

  // More steps and other threads: the same run, extended.
  const grpo_test::CliResult extended = train("train.steps=2 --threads 2");
  EXPECT_EQ(extended.code, 0) << extended.err;
  EXPECT_NE(extended.out.find("train: 2 steps done (1 in this run)"), std::string::npos) << extended.out;

  const grpo_test::CliResult allowed = train("train.steps=3 trainer.lr=0.002 --allow-config-change");
  EXPECT_EQ(allowed.code, 0) << allowed.err;
  EXPECT_NE(allowed.err.find("trainer.lr: 0.001 -> 0.002"), std::string::npos) << allowed.err;
  EXPECT_NE(allowed.out.find("train: 3 steps done (1 in this run)"), std::string::npos) << allowed.out;
}

// Relative input paths in a config file are read from the file's directory, those of overrides from
// the working directory; every missing input is named at once, before anything loads.
TEST_F(DryRun, RelativePathsAndMissingInputs) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const std::string elsewhere = scratch_.path() + "/elsewhere", config = scratch_.path() + "/run.yaml";
  fs::create_directories(elsewhere);
  auto in = [&](const std::string& args, const std::string& cwd) {
    return grpo_test::run_grpo(args, scratch_.path(), "", cwd);
  };
  // From another directory: the config's model and train.jsonl are still found.
  grpo_test::CliResult r = in("train " + config + " --dry-run", elsewhere);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("# model: " + scratch_.path() + "/model: "), std::string::npos) << r.out;
  // An override is read from the working directory.
  fs::copy_file(scratch_.path() + "/train.jsonl", elsewhere + "/mine.jsonl");
  r = in("train " + config + " --dry-run data.train.path=mine.jsonl", elsewhere);
  EXPECT_EQ(r.code, 0) << r.err;
  r = in("train " + config + " --dry-run data.train.path=mine.jsonl", scratch_.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("data.train.path: mine.jsonl (not a file)"), std::string::npos) << r.err;

  r = train("--dry-run model.path=nowhere data.train.path=none.jsonl reward.config=no.yaml");
  EXPECT_EQ(r.code, 2);
  for (const std::string& line :
       {"run.yaml: input files not found", "\n  model.path: nowhere (no config.json there",
        "\n  model.tokenizer: nowhere", "\n  data.train.path: none.jsonl (not a file)",
        "\n  reward.config: no.yaml (not a file)", "set each key in the config or pass KEY=PATH"})
    EXPECT_NE(r.err.find(line), std::string::npos) << line << "\n" << r.err;
}

}  // namespace
