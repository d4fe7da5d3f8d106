// The command line is the same for every command (common/cli.h): the config as CONFIG or --config
// FILE, --threads N on every computing command, `grpo --version`, and "did you mean" for a
// mistyped command, flag or config key. Through the grpo binary.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "grpo_cli.h"
#include "model/model_options.h"

namespace {

struct Outcome {
  int code;
  std::string out, err;
};
Outcome run(const std::string& args) {
  static const grpo_test::ScratchDir scratch("grpo_cli_config_args");
  const grpo_test::CliResult r = grpo_test::run_grpo_in_source(args, scratch.path());
  return {r.code, r.out, r.err};
}

TEST(ConfigArgs, Version) {
  const Outcome r = run("--version");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex("grpo [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << r.out;
}

// CONFIG and --config FILE mean the same, for the commands that took only one of them before.
TEST(ConfigArgs, PositionalOrFlag) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  for (const std::string& cmd : {"sft", "pretrain", "reward-server"}) {
    SCOPED_TRACE(cmd);
    const std::string file = cmd == "sft"        ? "configs/sft-tiny.yaml"
                             : cmd == "pretrain" ? "configs/tiny-zero.yaml"
                                                 : "configs/reward.yaml";
    const Outcome positional = run(cmd + " " + file + " --dry-run");
    const Outcome flag = run(cmd + " --config " + file + " --dry-run");
    EXPECT_EQ(positional.code, 0) << positional.err;
    EXPECT_EQ(flag.code, 0) << flag.err;
    EXPECT_EQ(positional.out, flag.out);
    EXPECT_FALSE(positional.out.empty());
    const Outcome both = run(cmd + " " + file + " --config " + file + " --dry-run");
    EXPECT_EQ(both.code, 0) << both.err;
  }
  const Outcome differ = run("train configs/tiny-zero.yaml --config configs/sft-tiny.yaml --dry-run");
  EXPECT_EQ(differ.code, 2);
  EXPECT_NE(differ.err.find("grpo train: the config is given twice, as 'configs/tiny-zero.yaml' and --config "
                            "'configs/sft-tiny.yaml'"),
            std::string::npos)
      << differ.err;
  const Outcome none = run("sft --dry-run");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("grpo sft: give the config (CONFIG or --config FILE)"), std::string::npos) << none.err;
}

TEST(ConfigArgs, ThreadsOnEveryComputingCommand) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  for (const std::string& cmd : {"train", "distill", "sft", "pretrain", "learner", "eval", "generate", "logprobs",
                                 "rollout-server", "init-model", "info"}) {
    const Outcome help = run(cmd + " --help");
    EXPECT_NE(help.out.find("--threads N"), std::string::npos) << cmd << "\n" << help.out;
  }
  // --threads N lands in the config's threads key (the dry run prints the resolved config).
  const Outcome sft = run("sft configs/sft-tiny.yaml --threads 3 --dry-run");
  EXPECT_EQ(sft.code, 0) << sft.err;
  EXPECT_NE(sft.out.find("threads: 3"), std::string::npos) << sft.out;
  const Outcome bad = run("sft configs/sft-tiny.yaml --threads many --dry-run");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--threads: expected an integer in [0, 4096], got \"many\""), std::string::npos) << bad.err;
}

// `dtype: auto` in a run config: the command says what it resolves to on this CPU; a wrong name
// names the key and the allowed values.
TEST(ConfigArgs, DtypeAutoInConfigsIsSaidAndAWrongNameIsAClearError) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const grpo::AutoDtype chosen = grpo::auto_dtype();
  // The demo's config on the test fixtures (a fresh clone has no runs/tiny-zero/base).
  const std::string model = " model.path=tests/data/dsv3-tiny model.tokenizer=tests/data/bpe-tokenizer/tokenizer.json";
  const Outcome train =
      run("train configs/tiny-zero.yaml" + model + " rollout.dtype=auto trainer.dtype=auto --dry-run");
  EXPECT_EQ(train.code, 0) << train.err;
  for (const char* key : {"rollout.dtype", "trainer.dtype"})
    EXPECT_NE(train.err.find(std::string("train: ") + key + " auto = " + chosen.name), std::string::npos) << key << "\n"
                                                                                                          << train.err;
  const Outcome pretrain = run("pretrain configs/tiny-zero.yaml pretrain.dtype=auto --dry-run");
  EXPECT_EQ(pretrain.code, 0) << pretrain.err;
  EXPECT_NE(pretrain.err.find("pretrain: pretrain.dtype auto = " + chosen.name), std::string::npos) << pretrain.err;
  const Outcome save = run("pretrain configs/tiny-zero.yaml pretrain.save_dtype=auto --dry-run");
  EXPECT_EQ(save.code, 2);  // a checkpoint's dtype does not follow the CPU
  EXPECT_NE(save.err.find("save_dtype': expected fp32 or bf16, got \"auto\""), std::string::npos) << save.err;
  const Outcome bad = run("train configs/tiny-zero.yaml" + model + " rollout.dtype=fp16 --dry-run");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("rollout.dtype': expected fp32, bf16, fp8 or auto, got 'fp16'"), std::string::npos) << bad.err;
}

TEST(ConfigArgs, DidYouMean) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const Outcome command = run("trian configs/tiny-zero.yaml");
  EXPECT_EQ(command.code, 2);
  EXPECT_NE(command.err.find("unknown command 'trian' (did you mean train?)"), std::string::npos) << command.err;
  const Outcome flag = run("sft configs/sft-tiny.yaml --dry-rn");
  EXPECT_EQ(flag.code, 2);
  EXPECT_NE(flag.err.find("unknown option --dry-rn (did you mean --dry-run?)"), std::string::npos) << flag.err;
  const Outcome key = run("pretrain configs/tiny-zero.yaml pretrain.seq_lne=64 --dry-run");
  EXPECT_EQ(key.code, 2);
  EXPECT_NE(key.err.find("key 'pretrain.seq_lne': unknown key (did you mean 'pretrain.seq_len'?)"), std::string::npos)
      << key.err;
  // Nothing close: no guess.
  const Outcome far = run("sft configs/sft-tiny.yaml --zzzzzz");
  EXPECT_EQ(far.code, 2);
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << far.err;
}

}  // namespace
