// `grpo verify` and `grpo reward-server` run as the real binary: JSONL in/out, bad lines, the
// server on a free loopback port answering the same as the in-process registry, clean shutdown on
// SIGTERM, config errors naming file and key.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/subprocess.h"

using grpo::testing::Subprocess;
using nlohmann::json;

namespace {

const std::string kConfig = GRPO_SOURCE_DIR "/configs/reward.yaml";

// A temp file holding `text`, removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/grpo_cli_reward_XXXXXX";
    int fd = mkstemp(name);
    path_ = name;
    FILE* f = fdopen(fd, "w");
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Result {
  int status;
  std::string out;
};

Result run(const std::vector<std::string>& args, const std::string& stdin_text = "", bool merge_stderr = false) {
  TempFile in(stdin_text);
  std::vector<std::string> argv = {GRPO_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv, in.path(), merge_stderr);
  std::string out = p.read_all();
  return {p.wait(), out};
}

std::vector<json> lines_of(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) v.push_back(json::parse(line));
  return v;
}

const std::string kInput =
    "{\"id\": \"a\", \"completion\": \"<think>We add.</think> 4\"}\n"
    "not json\n"
    "\n"
    "{\"id\": \"c\", \"completion\": \"no think block\", \"reference\": {\"tests\": []}}\n"
    "{\"id\": \"d\", \"completion\": \"<think>x</think> 4\", \"completion_tokens\": 3840}\n"
    "{\"id\": \"e\", \"reference\": \"4\"}\n"
    "{\"id\": \"f\", \"completion\": \"<think>x</think> 4\", \"options\": {\"format\": {\"answer_tags\": true}}}\n";

}  // namespace

TEST(CliVerify, ScoresJsonlAndReportsBadLines) {
  Result r = run({"verify", "--verifier", "shaped", "--config", kConfig}, kInput);
  EXPECT_EQ(r.status, 1);  // some lines could not be scored
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;  // the blank line is skipped
  // shaped = 1*format + 0.1*language + 1*overlong (max 4096, cache 512).
  EXPECT_EQ(lines[0]["id"], "a");
  EXPECT_DOUBLE_EQ(lines[0]["reward"].get<double>(), 1.1);
  EXPECT_EQ(lines[0]["correct"], true);
  EXPECT_EQ(lines[0]["components"], json::parse(R"({"format": 1.0, "language": 1.0, "overlong": 0.0})"));
  EXPECT_EQ(lines[1]["line"], 2);
  EXPECT_NE(lines[1]["error"].get<std::string>().find("invalid JSON"), std::string::npos);
  EXPECT_DOUBLE_EQ(lines[2]["reward"].get<double>(), 0.1);  // no format; language 1
  EXPECT_EQ(lines[2]["correct"], false);
  // 3840 tokens: (3584 - 3840) / 512 = -0.5 -> 1 + 0.1 - 0.5.
  EXPECT_DOUBLE_EQ(lines[3]["reward"].get<double>(), 0.6);
  EXPECT_EQ(lines[4], json::parse(R"({"line": 6, "id": "e", "error": "field 'completion': required, a string"})"));
  EXPECT_DOUBLE_EQ(lines[5]["components"]["format"].get<double>(), 0.0);  // per-line part options

  r = run({"verify", "--verifier", "format"}, "{\"completion\": \"<think>a</think> 4\"}\n");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(lines_of(r.out)[0], json::parse(R"({"reward": 1.0, "correct": true, "reason": "ok",
                                                "components": {"format": 1.0}, "extracted": "4"})"));
  // The R1 composite from the config: math accuracy + 0.1 format + overlong.
  r = run({"verify", "--verifier", "r1", "--config", kConfig},
          "{\"completion\": \"<think>2+2</think> \\\\boxed{4}\", \"reference\": \"4\"}\n"
          "{\"completion\": \"<think>2+2</think> \\\\boxed{5}\", \"reference\": \"4\"}\n");
  EXPECT_EQ(r.status, 0) << r.out;
  auto r1 = lines_of(r.out);
  ASSERT_EQ(r1.size(), 2u);
  EXPECT_DOUBLE_EQ(r1[0]["reward"].get<double>(), 1.1);
  EXPECT_EQ(r1[0]["correct"], true);
  EXPECT_DOUBLE_EQ(r1[1]["reward"].get<double>(), 0.1);
  EXPECT_EQ(r1[1]["correct"], false);
  r = run({"verify", "--verifier", "format", "--options", "{\"answer_tags\": true}"},
          "{\"completion\": \"<think>a</think> 4\"}\n");
  EXPECT_EQ(lines_of(r.out)[0]["reason"], "no <answer>…</answer> after </think>");
}

TEST(CliVerify, UsageErrors) {
  Result r = run({"verify", "--verifier", "nope"}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("unknown verifier 'nope' (registered: code, format, language, math, overlong)"),
            std::string::npos)
      << r.out;
  r = run({"verify", "--verifier", "format", "--options", "[1"}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--options: invalid JSON"), std::string::npos) << r.out;
  r = run({"verify", "--verifier", "format", "--config", kConfig, "limits.timeout_ms=-1"}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("reward.yaml: key 'limits.timeout_ms': must be >= 1, got -1"), std::string::npos) << r.out;
}

TEST(CliRewardServer, ServesVerifyAndStopsOnSigterm) {
  Subprocess server(
      {GRPO_BINARY, "reward-server", "--config", kConfig, "server.address=127.0.0.1:0", "server.workers=2"});
  std::string first = server.read_line();
  const std::string prefix = "reward-server listening on ";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  std::string address = first.substr(prefix.size(), first.find(' ', prefix.size()) - prefix.size());
  EXPECT_NE(first.find("verifiers: code, format, language, math, overlong, r1, shaped"), std::string::npos) << first;

  // Through the server, the same lines come back as from the in-process registry.
  Result local = run({"verify", "--verifier", "shaped", "--config", kConfig}, kInput);
  Result remote = run({"verify", "--verifier", "shaped", "--server", address, "--batch", "2"}, kInput);
  EXPECT_EQ(remote.status, 1);
  EXPECT_EQ(remote.out, local.out);

  Result unknown = run({"verify", "--verifier", "nope", "--server", address}, "", true);
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.out.find("unknown verifier 'nope' at " + address), std::string::npos) << unknown.out;

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0);
  Result gone = run({"verify", "--verifier", "format", "--server", address, "--timeout-ms", "500"}, "", true);
  EXPECT_EQ(gone.status, 1);
  EXPECT_NE(gone.out.find("UNAVAILABLE"), std::string::npos) << gone.out;
}

TEST(CliRewardServer, ConfigErrorsNameFileAndKey) {
  Result r = run({"reward-server", "--config", kConfig, "server.wokers=3"}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("reward.yaml: key 'server.wokers': unknown key"), std::string::npos) << r.out;
  r = run({"reward-server", "--config", kConfig, "composites.r1.accuracy.verifier=mth"}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("key 'composites.r1': unknown verifier 'mth'"), std::string::npos) << r.out;
  r = run({"reward-server", "--config", "/nonexistent.yaml"}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("/nonexistent.yaml: cannot open config file"), std::string::npos) << r.out;
}
