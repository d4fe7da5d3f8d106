// Runs the grpo binary as users do.
#include <gtest/gtest.h>

#include <string>

#include "grpo_cli.h"

namespace {
struct Outcome {
  int code;
  std::string out;  // stdout, then stderr
};
Outcome run(const std::string& args) {
  static const grpo_test::ScratchDir scratch("grpo_cli_basic");  // stdin/stderr files
  grpo_test::CliResult r = grpo_test::run_grpo(args, scratch.path());
  return {r.code, r.out + r.err};
}
}  // namespace

TEST(Cli, HelpListsCommands) {
  Outcome r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("info"), std::string::npos) << r.out;
  Outcome bare = run("");
  EXPECT_EQ(bare.code, 2);
}

TEST(Cli, UnknownCommandAndOption) {
  Outcome r = run("no-such-command");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown command 'no-such-command'"), std::string::npos) << r.out;
  Outcome o = run("info --bogus 1");
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.out.find("unknown option --bogus"), std::string::npos) << o.out;
  Outcome t = run("info --threads many");
  EXPECT_EQ(t.code, 2);
  EXPECT_NE(t.out.find("--threads: expected an integer"), std::string::npos) << t.out;
}

TEST(Cli, SubcommandHelpAndInfo) {
  Outcome h = run("info --help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("usage: grpo info"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("--threads N"), std::string::npos) << h.out;
  Outcome i = run("info --threads 2");
  EXPECT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("blas          MKL"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("libtorch      2."), std::string::npos) << i.out;
  // What the build holds and what it sees, with or without CUDA parts and a GPU.
  EXPECT_NE(i.out.find("cuda build    "), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("cuda devices  "), std::string::npos) << i.out;
}
