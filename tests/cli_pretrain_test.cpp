// `grpo synth-task` and `grpo pretrain` as a user runs them: prompt sets with correct answers and a
// disjoint held-out split; the demo config (configs/tiny-zero.yaml, shortened by overrides)
// pretrains, saves a checkpoint that `grpo generate` samples from; config errors name the key.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"
#include "subprocess.h"

using grpo_test::json_lines;
using nlohmann::json;
using Result = grpo_test::CliResult;

namespace {

class CliPretrain : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "grpo_cli_pretrain_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `grpo ARGS` from the source root (the demo config's paths are relative to it).
  Result run(const std::string& args) const { return grpo_test::run_grpo_in_source(args, dir_); }
  static int fold_of(const std::string& question) {  // "7 5 3" -> ||7-5|-3| = 1
    std::stringstream ss(question);
    int value, term;
    ss >> value;
    while (ss >> term) value = std::abs(value - term);
    return value;
  }

  std::string dir_;
};

TEST_F(CliPretrain, SynthTaskWritesDistinctCorrectProblemsAndDisjointSplits) {
  Result train = run("synth-task --task digit_chains --split train --n 400 --seed 1");
  ASSERT_EQ(train.code, 0) << train.err;
  Result held = run("synth-task --task digit_chains --split heldout --n 50 --seed 1 --out " + dir_ + "/h.jsonl");
  ASSERT_EQ(held.code, 0) << held.err;
  std::stringstream h;
  h << std::ifstream(dir_ + "/h.jsonl").rdbuf();

  std::set<std::string> train_q;
  for (const json& j : json_lines(train.out)) {
    EXPECT_EQ(j["answer"], std::to_string(fold_of(j["prompt"])));
    train_q.insert(j["prompt"].get<std::string>());
  }
  EXPECT_EQ(train_q.size(), 400u);
  const auto held_lines = json_lines(h.str());
  ASSERT_EQ(held_lines.size(), 50u);
  EXPECT_EQ(held_lines[3]["id"], "digit_chains/heldout/3");
  for (const json& j : held_lines) EXPECT_EQ(train_q.count(j["prompt"].get<std::string>()), 0u) << j;

  EXPECT_EQ(run("synth-task --task digit_chains --split train --n 400 --seed 1").out, train.out);  // deterministic
  EXPECT_NE(run("synth-task --task digit_chains --split train --n 400 --seed 2").out, train.out);
  Result bad = run("synth-task --task countdown --split train --n 3");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("countdown"), std::string::npos) << bad.err;
  bad = run("synth-task --task digit_chains --split test --n 3");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("test"), std::string::npos) << bad.err;
}

TEST_F(CliPretrain, DemoConfigPretrainsAndTheCheckpointGenerates) {
  const std::string base = dir_ + "/base";
  Result r =
      run("pretrain --config configs/tiny-zero.yaml --quiet pretrain.steps=6 pretrain.batch_size=4 "
          "pretrain.out_dir=" +
          base + " pretrain.log_dir=" + dir_ + "/logs");
  ASSERT_EQ(r.code, 0) << r.err;
  const json summary = json::parse(r.out);
  EXPECT_EQ(summary["steps"], 6);
  EXPECT_LT(summary["final_loss"].get<double>(), summary["first_loss"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/logs/metrics.jsonl"));

  std::ofstream(dir_ + "/prompts.jsonl") << json{{"prompt", "User: 1 2 3 4\nAssistant: <think>"}}.dump() << "\n";
  Result g = run("generate --model " + base + " --tokenizer " + base + " --prompts " + dir_ +
                 "/prompts.jsonl --n 2 --temperature 1 --max-new-tokens 6");
  ASSERT_EQ(g.code, 0) << g.err;
  const auto out = json_lines(g.out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].contains("text"));
  EXPECT_LE(out[0]["output_ids"].size(), 6u);

  Result bad = run("pretrain --config configs/tiny-zero.yaml pretrain.optim.lrr=1 pretrain.out_dir=" + base);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("pretrain.optim.lrr"), std::string::npos) << bad.err;
}

// A model config with an MTP module: pretraining trains it beside the model (its loss logged and
// falling), the checkpoint holds it, and `grpo generate` drafts with it — the same completions as
// without --speculative, some drafts kept. mtp_weight out of range names the key.
TEST_F(CliPretrain, MtpModuleTrainsAndDraftsForGenerate) {
  json model = json::parse(std::ifstream(std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/model.json"));
  model["num_nextn_predict_layers"] = 1;
  std::ofstream(dir_ + "/model.json") << model.dump(2);
  const std::string base = dir_ + "/base";
  Result r =
      run("pretrain --config configs/tiny-zero.yaml --quiet pretrain.steps=40 pretrain.batch_size=8 "
          "pretrain.log_every=1 pretrain.model=" +
          dir_ + "/model.json pretrain.out_dir=" + base + " pretrain.log_dir=" + dir_ + "/logs");
  ASSERT_EQ(r.code, 0) << r.err;
  std::stringstream metrics;
  metrics << std::ifstream(dir_ + "/logs/metrics.jsonl").rdbuf();
  std::vector<double> mtp_loss;
  for (const json& j : json_lines(metrics.str()))
    if (j.contains("pretrain/mtp_loss")) mtp_loss.push_back(j["pretrain/mtp_loss"].get<double>());
  ASSERT_GE(mtp_loss.size(), 10u);
  EXPECT_LT(mtp_loss.back(), mtp_loss.front() - 0.5) << "the MTP module learns";
  std::stringstream header;
  header << std::ifstream(base + "/model.safetensors").rdbuf();
  EXPECT_NE(header.str().find("model.layers.4.eh_proj.weight"), std::string::npos);

  std::ofstream(dir_ + "/prompts.jsonl") << json{{"prompt", "User: 1 2 3 4\nAssistant: <think>"}}.dump() << "\n"
                                         << json{{"prompt", "User: 9 3 5\nAssistant: <think>"}}.dump() << "\n";
  const std::string gen = "generate --model " + base + " --prompts " + dir_ +
                          "/prompts.jsonl --n 2 --temperature 1 --seed 3 --max-new-tokens 24 --timing";
  Result drafted = run(gen + " --speculative"), plain = run(gen);
  ASSERT_EQ(drafted.code, 0) << drafted.err;
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(drafted.out, plain.out);
  EXPECT_NE(drafted.err.find("MTP drafts kept "), std::string::npos) << drafted.err;
  EXPECT_EQ(drafted.err.find("MTP drafts kept 0 of"), std::string::npos) << drafted.err;
  EXPECT_EQ(plain.err.find("MTP drafts"), std::string::npos) << plain.err;

  Result bad = run("pretrain --config configs/tiny-zero.yaml pretrain.mtp_weight=-1 pretrain.out_dir=" + base);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("pretrain.mtp_weight"), std::string::npos) << bad.err;
}

// SIGTERM during `grpo pretrain` (stderr in a pipe, not a terminal): training ends after the
// current step, the model of that step is saved and the message says so; the start banner and
// plain progress lines came before.
TEST_F(CliPretrain, SigtermEndsTrainingAndSavesTheModel) {
  const std::string base = dir_ + "/stopped";
  grpo::testing::Subprocess p({"/bin/sh", "-c",
                               "cd " + std::string(GRPO_SOURCE_DIR) + " && exec " + GRPO_BINARY +
                                   " pretrain --config configs/tiny-zero.yaml pretrain.steps=100000 "
                                   "pretrain.batch_size=4 pretrain.out_dir=" +
                                   base + " pretrain.log_dir=" + dir_ + "/logs 2>&1"});
  std::string seen;
  for (std::string l; l.rfind("pretrain 1/100000 [", 0) != 0;) seen += (l = p.read_line(120'000)) + "\n";
  p.signal(SIGTERM);
  const std::string out = seen + p.read_all();
  ASSERT_EQ(p.wait(60'000), 128 + SIGTERM) << out;
  EXPECT_EQ(out.rfind("pretrain: configs/tiny-zero.yaml: 100000 steps of 4 sequences, model ", 0), 0u) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_NE(out.find("pretrain: Terminated: stopping after the current step"), std::string::npos) << out;
  const auto at = out.find("pretrain: stopped at step ");
  ASSERT_NE(at, std::string::npos) << out;
  const int steps = std::stoi(out.substr(at + 26));
  EXPECT_GE(steps, 1);
  EXPECT_LT(steps, 100000);
  EXPECT_NE(out.find("; the model after " + std::to_string(steps) + " steps is saved in " + base +
                     " (pretrain does not resume: the same command starts over)"),
            std::string::npos)
      << out;
  const auto summary = out.find("\n{");
  ASSERT_NE(summary, std::string::npos) << out;
  EXPECT_EQ(json::parse(out.substr(summary + 1, out.find('\n', summary + 1) - summary - 1))["steps"], steps);
  EXPECT_TRUE(std::filesystem::exists(base + "/model.safetensors"));
}

}  // namespace
