// What a running `grpo train` prints, through the binary with stderr in a file or pipe (not a
// terminal, as under Slurm): the start banner, one plain line per step at most (no `\r`, no escape
// codes), the held-out value with the step it was measured at, a warning for a step that trained
// no group and its count in the summary and report, and a SIGTERM that stops the run with a
// message after which the same command resumes.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "grpo_cli.h"
#include "learner_run_testutil.h"
#include "metrics/metrics.h"
#include "subprocess.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

// A tiny random model, 12 prompts "What is i + i?" and a run config under a fresh directory.
struct RunDir {
  grpo_test::ScratchDir dir{"grpo_train_progress"};
  fs::path root{dir.path()};
  RunDir() { testing::write_tiny_run_inputs(root); }

  // Writes run.yaml: `steps` steps, the given verifier and train keys; returns its path.
  std::string config(int steps, const std::string& verifier, const std::string& train) const {
    const std::string src = GRPO_SOURCE_DIR;
    std::ofstream((root / "run.yaml").string())
        << "run: {name: t, out_dir: " << (root / "run").string() << ", seed: 3, threads: 1}\n"
        << "model: {path: " << (root / "model").string() << "}\n"
        << "template: " << src << "/configs/chat_templates/chatml-think.yaml\n"
        << "data:\n  train: {path: " << (root / "train.jsonl").string() << "}\n"
        << "  heldout: {path: " << (root / "train.jsonl").string() << ", limit: 4}\n"
        << "reward: {config: " << src << "/configs/reward.yaml, verifier: " << verifier << "}\n"
        << "rollout: {workers: 1, group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 12}}\n"
        << "train: {steps: " << steps << ", " << train << "}\n"
        << "trainer: {lr: 0.001, micro_batch_size: 4, mini_batches: 2, threads: 1}\n";
    return (root / "run.yaml").string();
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The progress lines ("train N/TOTAL [...") of `text`, checked to be plain lines of increasing N.
std::vector<std::string> progress_lines(const std::string& text, int total) {
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_EQ(text.find('\033'), std::string::npos) << text;
  const std::regex line("train (\\d+)/" + std::to_string(total) + " \\[");
  std::vector<std::string> out;
  int last = -1;
  for (const std::string& l : lines_of(text)) {
    std::smatch m;
    if (!std::regex_search(l, m, line) || m.position(0) != 0) continue;
    const int n = std::stoi(m[1]);
    EXPECT_GT(n, last) << "two lines for one step:\n" << text;
    last = n;
    out.push_back(l);
  }
  return out;
}

// A math verifier never satisfied by a random model gives every completion reward 0: with dynamic
// sampling no step has a group to train on. Each step says so on stderr, the summary counts them,
// metrics.jsonl logs groups/trained 0 and report.html counts the steps.
TEST(TrainProgress, StepsThatTrainNoGroupAreWarnedAndCounted) {
  RunDir r;
  const std::string cfg =
      r.config(2, "math", "prompts_per_step: 2, eval_every: 0, dynamic_sampling: true, max_refill_rounds: 1");
  const grpo_test::CliResult res = grpo_test::run_grpo("train " + cfg, r.dir.path());
  ASSERT_EQ(res.code, 0) << res.out << res.err;
  const MetricsHistory h = read_metrics((r.root / "run" / "metrics.jsonl").string());
  for (const auto& [step, v] : h.series.at("reward/mean")) ASSERT_EQ(v, 0) << "step " << step << " had a reward";
  EXPECT_EQ(h.series.at("groups/trained"), (std::vector<std::pair<int64_t, double>>{{1, 0}, {2, 0}}));

  EXPECT_NE(res.out.find("train: 2 steps done (2 in this run, 2 trained no group)"), std::string::npos) << res.out;
  for (int step : {1, 2})
    EXPECT_NE(res.err.find("train: step " + std::to_string(step) +
                           " trained 0 groups: every one of its 4 groups had equal rewards (every reward 0.000), "
                           "and dynamic sampling trains only on groups whose rewards differ"),
              std::string::npos)
        << res.err;
  const std::vector<std::string> progress = progress_lines(res.err, 2);
  ASSERT_FALSE(progress.empty()) << res.err;
  EXPECT_EQ(progress.back().rfind("train 2/2 [100%] ", 0), 0u) << progress.back();
  EXPECT_NE(progress.back().find(" trained=0"), std::string::npos) << progress.back();

  std::stringstream report;
  report << std::ifstream((r.root / "run" / "report.html").string()).rdbuf();
  EXPECT_NE(report.str().find("2 of 2 steps trained no group (steps 1, 2)"), std::string::npos);
}

// SIGTERM in the middle of a run: it stops after the current step with a checkpoint there and
// says how to resume; the same command then finishes the run. Both runs print the banner, plain
// progress lines, and the held-out accuracy with the step it was measured at.
TEST(TrainProgress, SigtermStopsWithAMessageAndTheSameCommandResumes) {
  RunDir r;
  const int steps = 8;
  const std::string cfg = r.config(steps, "shaped", "prompts_per_step: 2, eval_every: 2, checkpoint_every: 100");
  int stopped_at = 0;
  {
    testing::Subprocess run({GRPO_BINARY, "train", cfg}, "/dev/null", /*merge_stderr=*/true);
    std::string seen;
    for (std::string l; l.rfind("train 1/", 0) != 0;) seen += (l = run.read_line(120'000)) + "\n";
    run.signal(SIGTERM);
    const std::string out = seen + run.read_all();
    ASSERT_EQ(run.wait(60'000), 128 + SIGTERM) << out;
    EXPECT_NE(out.find("train: " + cfg + ": run directory " + (r.root / "run").string() + ", model " +
                       (r.root / "model").string() + ", 8 steps\ntrain: starting at step 0 (no checkpoint yet)\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("train: Terminated: stopping after the current step (again: exit at once)"), std::string::npos)
        << out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m,
                                  std::regex("train: stopped at step (\\d+) \\(Terminated\\); run the same "
                                             "command to resume")))
        << out;
    stopped_at = std::stoi(m[1]);
    ASSERT_GE(stopped_at, 1);
    ASSERT_LT(stopped_at, steps) << "the run ended before the signal";
    char name[32];
    std::snprintf(name, sizeof name, "step-%06d", stopped_at);
    EXPECT_TRUE(fs::exists(r.root / "run" / "checkpoints" / name)) << out;
    progress_lines(out, steps);
  }
  // The resumed run counts on from the step it resumed at.
  testing::Subprocess again({GRPO_BINARY, "train", cfg}, "/dev/null", true);
  const std::string out = again.read_all();
  ASSERT_EQ(again.wait(60'000), 0) << out;
  EXPECT_NE(out.find("train: resuming from step " + std::to_string(stopped_at) + " ("), std::string::npos) << out;
  EXPECT_NE(out.find("train: 8 steps done (" + std::to_string(steps - stopped_at) + " in this run)"), std::string::npos)
      << out;
  const std::vector<std::string> progress = progress_lines(out, steps);  // counting on from the resumed step
  ASSERT_FALSE(progress.empty()) << out;
  EXPECT_NE(progress.back().find(" heldout@8="), std::string::npos) << progress.back();
}

}  // namespace
}  // namespace grpo
