// The demo, shortened and seeded (`make demo` runs the full one): `grpo synth-task` makes train and
// held-out prompt sets, `grpo pretrain` makes a base model from configs/tiny-zero.yaml, `grpo train`
// runs GRPO on it with the in-process reward and rollout services, and the held-out reward the run
// logs in metrics.jsonl must rise clearly. The task is shorter than the demo's (SHORT_TASK below) so
// that the whole test takes a few minutes on 2 cores.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

struct Result {
  int code;
  std::string out, err;
};

class TinyZero : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "grpo_demo_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Runs `grpo ARGS` from the source root (the demo config's paths are relative to it).
  Result run(const std::string& args) const {
    const std::string cmd =
        "cd " + std::string(GRPO_SOURCE_DIR) + " && " + GRPO_BINARY + " " + args + " 2> " + dir_ + "/stderr";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int status = pclose(p);
    std::stringstream err;
    err << std::ifstream(dir_ + "/stderr").rdbuf();
    return {WEXITSTATUS(status), out, err.str()};
  }

  std::string dir_;
};

// The task of this variant, as synth-task flags and as the pretrain config's digit_chains keys.
constexpr const char* kShortTaskFlags = "--min-terms 4 --max-terms 5";
constexpr const char* kShortTaskKeys = "pretrain.corpus.digit_chains.min_terms=4 pretrain.corpus.digit_chains.max_terms=5";

TEST_F(TinyZero, GrpoLiftsHeldOutRewardOfAPretrainedBase) {
  Result r = run(std::string("synth-task --task digit_chains --split train --n 400 --seed 1 ") + kShortTaskFlags +
                 " --out " + dir_ + "/train.jsonl");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run(std::string("synth-task --task digit_chains --split heldout --n 64 --seed 2 ") + kShortTaskFlags + " --out " +
          dir_ + "/heldout.jsonl");
  ASSERT_EQ(r.code, 0) << r.err;

  const std::string base = dir_ + "/base";
  r = run(std::string("pretrain --config configs/tiny-zero.yaml --quiet ") + kShortTaskKeys +
          " pretrain.steps=PRETRAIN_STEPS pretrain.seq_len=64 pretrain.out_dir=" + base + " pretrain.log_dir=" + dir_ +
          "/pretrain");
  ASSERT_EQ(r.code, 0) << r.err;

  const std::string out = dir_ + "/grpo";
  r = run("train configs/tiny-zero.yaml model.path=" + base + " run.out_dir=" + out + " data.train.path=" + dir_ +
          "/train.jsonl data.heldout.path=" + dir_ +
          "/heldout.jsonl train.steps=GRPO_STEPS train.eval_every=GRPO_STEPS train.eval_limit=64 "
          "train.checkpoint_every=GRPO_STEPS rollout.sampling.max_new_tokens=40");
  ASSERT_EQ(r.code, 0) << r.err;

  // eval/reward at the start (step 0) and the end.
  std::vector<std::pair<int64_t, double>> evals;
  std::ifstream metrics(out + "/metrics.jsonl");
  ASSERT_TRUE(metrics) << out << "/metrics.jsonl";
  for (std::string line; std::getline(metrics, line);) {
    const json j = json::parse(line);
    if (j.contains("eval/reward")) evals.emplace_back(j["step"].get<int64_t>(), j["eval/reward"].get<double>());
  }
  ASSERT_EQ(evals.size(), 2u);
  EXPECT_EQ(evals.front().first, 0);
  EXPECT_GT(evals.back().second, evals.front().second + MIN_RISE)
      << "held-out reward " << evals.front().second << " -> " << evals.back().second;
}

}  // namespace
