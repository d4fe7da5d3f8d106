// Hostile command lines and configs through the real `grpo` binary: every integer flag is range
// checked (no wrap-around), an argument that is neither an option nor key=value is refused, ports
// are in range, configs cut short, with duplicate keys, unknown sections or out-of-range values are
// refused, and sizes no machine could hold fail naming the key, the size and the limit. Each case
// must exit non-zero with a message that names the flag/key and the allowed range.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"

namespace {

using grpo_test::ScratchDir;

const std::string kSource = GRPO_SOURCE_DIR;
const std::string kFixture = std::string(GRPO_TEST_DATA) + "/dsv3-tiny";  // 512 positions

struct Outcome {
  int code;
  std::string out;  // stdout, then stderr
};

const ScratchDir& scratch() {
  static const ScratchDir dir("grpo_cli_bounds");
  return dir;
}

// `grpo ARGS` from the source root (the configs' relative paths point there).
Outcome run(const std::string& args, const std::string& input = "") {
  grpo_test::CliResult r = grpo_test::run_grpo_in_source(args, scratch().path(), input);
  return {r.code, r.out + r.err};
}

std::string write(const std::string& name, const std::string& text) {
  const std::string path = scratch().path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool services_built() { return run("--help").out.find("rollout-server") != std::string::npos; }

// Exit status 2 (an input error, not a crash) and every piece of `expected` in the message.
#define EXPECT_REFUSED(outcome, ...)                                                              \
  do {                                                                                            \
    const Outcome& o_ = (outcome);                                                                \
    EXPECT_EQ(o_.code, 2) << o_.out;                                                              \
    for (const std::string& piece : std::initializer_list<std::string>{__VA_ARGS__})              \
      EXPECT_NE(o_.out.find(piece), std::string::npos) << "missing: " << piece << "\n" << o_.out; \
  } while (0)

}  // namespace

// Item 9: 4294967298 is 2 modulo 2^32; it must not become 2 problems.
TEST(CliBounds, IntegerFlagOutsideIntIsRefusedNotWrapped) {
  EXPECT_REFUSED(run("synth-task --task digit_chains --split train --n 4294967298"),
                 "--n: expected an integer in [1, 2147483647], got \"4294967298\"");
}

TEST(CliBounds, MaxNewTokensOutsideIntIsRefusedNotWrapped) {
  EXPECT_REFUSED(run("generate --model " + kFixture + " --prompt-ids 1,2 --max-new-tokens 4294967299"),
                 "--max-new-tokens: expected an integer in [1, 2147483647], got \"4294967299\"");
}

TEST(CliBounds, IntegerBeyond64BitsIsRefused) {
  EXPECT_REFUSED(run("synth-task --task digit_chains --split train --n 2 --seed 99999999999999999999999"),
                 "--seed: expected an integer in [0, 9223372036854775807]");
}

// Item 10: `pretrain.steps` without '=' was silently a positional argument.
TEST(CliBounds, OverrideWithoutEqualsIsRefused) {
  EXPECT_REFUSED(run("pretrain --config configs/tiny-zero.yaml pretrain.steps"), "unexpected argument 'pretrain.steps'",
                 "key.path=value");
  if (services_built())  // `train` needs the services
    EXPECT_REFUSED(run("train configs/tiny-zero.yaml train.steps"), "unexpected argument 'train.steps'");
}

TEST(CliBounds, VerifyRefusesUnknownOverrideKeys) {
  if (!services_built()) GTEST_SKIP() << "built without services";
  // In process: the reward config's keys.
  EXPECT_REFUSED(run("verify --verifier format foo.bar=1", "{\"completion\": \"x\"}\n"), "key 'foo'", "unknown key");
  // With --server the overrides would not apply: refused, naming the override.
  EXPECT_REFUSED(run("verify --verifier format --server 127.0.0.1:1 limits.timeout_ms=5"),
                 "override 'limits.timeout_ms=5'", "--server");
}

// Item 11: gRPC reads the port modulo 65536 (70000 -> 4464).
TEST(CliBounds, ListenPortOutOfRangeIsRefused) {
  if (!services_built()) GTEST_SKIP() << "built without services";
  EXPECT_REFUSED(run("reward-server server.address=127.0.0.1:70000"), "key 'server.address'",
                 "port 70000 of '127.0.0.1:70000' is outside [0, 65535]");
  EXPECT_REFUSED(run("rollout-server --model " + kFixture + " server.address=127.0.0.1:70000"), "key 'server.address'",
                 "outside [0, 65535]");
  EXPECT_REFUSED(run("rollout-server --model " + kFixture + " --address 127.0.0.1:70000"), "--address",
                 "outside [0, 65535]");
}

TEST(CliBounds, ClientPortOutOfRangeIsRefused) {
  if (!services_built()) GTEST_SKIP() << "built without services";
  EXPECT_REFUSED(run("verify --verifier format --server 127.0.0.1:70000"), "port 70000", "outside [1, 65535]");
}

// Item 12: a config cut in the middle of "  optim: {...}" ran pretraining on the default optimizer.
TEST(CliBounds, TruncatedConfigIsRefused) {
  const std::string full = read(kSource + "/configs/tiny-zero.yaml");
  const size_t cut = full.find("  optim:");
  ASSERT_NE(cut, std::string::npos);
  const std::string path = write("truncated.yaml", full.substr(0, cut + std::string("  optim:").size()));
  const std::string out = scratch().path() + "/truncated_run";  // the old code ran a step here
  EXPECT_REFUSED(run("pretrain --config " + path + " pretrain.steps=1 pretrain.out_dir=" + out +
                     " pretrain.log_dir=" + out + "/logs"),
                 path + ": key 'pretrain.optim' (line ", "no value");
}

TEST(CliBounds, DuplicateYamlKeyIsRefused) {
  const std::string path = write("dup.yaml", read(kSource + "/configs/tiny-zero.yaml") + "pretrain:\n  steps: 3\n");
  EXPECT_REFUSED(run("pretrain --config " + path), path + ": key 'pretrain' (line ", "duplicate key");
}

TEST(CliBounds, UnknownTopLevelSectionOfPretrainConfigIsRefused) {
  EXPECT_REFUSED(run("pretrain --config configs/tiny-zero.yaml pretrian.steps=3"), "key 'pretrian': unknown key",
                 "expected one of:", "pretrain");
}

TEST(CliBounds, PromptsPerStepOutOfRangeIsRefused) {
  if (!services_built()) GTEST_SKIP() << "built without services";
  EXPECT_REFUSED(run("train configs/tiny-zero.yaml train.prompts_per_step=100000000"),
                 "key 'train.prompts_per_step': must be in [1, 1048576], got 100000000");
}

TEST(CliBounds, SeqLenBeyondTheModelContextIsRefused) {
  EXPECT_REFUSED(run("pretrain --config configs/tiny-zero.yaml pretrain.seq_len=1e8"),
                 "key 'pretrain.seq_len': must be in [2, 256] (the model's max_position_embeddings), got 100000000");
}

TEST(CliBounds, NegativeMaxPositionEmbeddingsIsRefused) {
  nlohmann::json config = nlohmann::json::parse(read(kSource + "/configs/tiny-zero/model.json"));
  config["max_position_embeddings"] = -5;
  const std::string path = write("negative_positions.json", config.dump());
  EXPECT_REFUSED(run("init-model --config " + path + " --out " + scratch().path() + "/m"),
                 "key 'max_position_embeddings': must be > 0, got -5");
}

TEST(CliBounds, NegativeThreadsIsRefused) {
  EXPECT_REFUSED(run("info --threads -3"), "--threads: expected an integer in [0, 2147483647], got \"-3\"");
  EXPECT_REFUSED(run("logprobs --model " + kFixture + " --threads -3"), "--threads: expected an integer in [0, ");
}

TEST(CliBounds, NegativeRolloutServerVersionIsRefused) {
  if (!services_built()) GTEST_SKIP() << "built without services";
  EXPECT_REFUSED(run("rollout-server --model " + kFixture + " --version -5"),
                 "--version: expected an integer in [0, 9223372036854775807], got \"-5\"");
}

// Item 13: ids beyond the model's context, and a line no context could hold, are line errors.
TEST(CliBounds, LogprobsIdsBeyondTheContextAreLineErrors) {
  std::string ids = "{\"ids\": [1";
  for (int i = 1; i < 5000; ++i) ids += ",2";
  ids += "]}\n";
  std::string huge = "{\"ids\": [1";
  huge.reserve(100u << 20);
  while (huge.size() < (100u << 20)) huge += ",2";
  huge += "]}\n";
  grpo_test::CliResult r = grpo_test::run_grpo("logprobs --model " + kFixture + " --threads 1", scratch().path(),
                                               ids + huge + "{\"ids\": [1, 2, 3]}\n");
  EXPECT_EQ(r.code, 1) << r.err;
  const auto lines = grpo_test::json_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0]["error"],
            "line 1: \"ids\": 5000 tokens, more than the model's context of 512 positions "
            "(max_position_embeddings)");
  EXPECT_NE(lines[1]["error"].get<std::string>().find("line 2: longer than "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1]["error"].get<std::string>().find("context of 512 positions"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2]["logprobs"].size(), 2u) << lines[2];  // the next line is served
}

// Item 14: sizes no machine could hold name the key, the size and the limit.
TEST(CliBounds, HugeVocabularyNamesTheMemoryItNeeds) {
  nlohmann::json config = nlohmann::json::parse(read(kSource + "/configs/tiny-zero/model.json"));
  config["vocab_size"] = int64_t{1} << 40;
  const std::string path = write("huge_vocab.json", config.dump());
  const Outcome o = run("init-model --config " + path + " --out " + scratch().path() + "/m");
  EXPECT_REFUSED(o, "key 'vocab_size': the embedding table (vocab_size x hidden_size fp32 values) needs 512.0 TiB",
                 "of memory of this machine");
  EXPECT_EQ(o.out.find("frame #"), std::string::npos) << o.out;  // no LibTorch backtrace
}

TEST(CliBounds, HugePageCountNamesTheMemoryItNeeds) {
  if (!services_built()) GTEST_SKIP() << "built without services";
  const Outcome o = run("rollout-server --model " + kFixture + " engine.num_pages=1e12");
  EXPECT_REFUSED(o, "num_pages: 1000000000000 pages of 16 tokens (the latent cache) needs ",
                 "of memory of this machine");
  EXPECT_EQ(o.out.find("bad_alloc"), std::string::npos) << o.out;
}

TEST(CliBounds, LearnerTimeoutZeroIsRefused) {
  EXPECT_REFUSED(run("learner configs/tiny-zero.yaml --timeout 0"),
                 "--timeout: expected an integer in [1, 2147483647], got \"0\"");
  EXPECT_REFUSED(run("learner configs/tiny-zero.yaml --master-port 70000"),
                 "--master-port: expected an integer in [1, 65535], got \"70000\"");
}
