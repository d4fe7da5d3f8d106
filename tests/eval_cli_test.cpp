// `grpo eval` run as a user runs it: a random dsv3-tiny-shaped model (grpo init-model, the
// bpe-tokenizer fixture's vocabulary) on slices of the real datasets, verified in-process and
// through a real reward server; the JSON summary checked against the per-sample file; bad
// datasets, fields and options named in the error.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/subprocess.h"

using grpo::testing::Subprocess;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;
const std::string kData = GRPO_TEST_DATA;
const std::string kTok = kData + "/bpe-tokenizer/tokenizer.json";

struct Result {
  int status;
  std::string out;
};

class CliEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "grpo_cli_eval_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    json config = json::parse(std::ifstream(kData + "/dsv3-tiny/config.json"));
    config["vocab_size"] = 3000;  // the bpe-tokenizer fixture's vocabulary
    fs::create_directories(dir_ + "/cfg");
    std::ofstream(dir_ + "/cfg/config.json") << config.dump(2);
    Result init = run({"init-model", "--config", dir_ + "/cfg/config.json", "--out", model(), "--seed", "3"});
    ASSERT_EQ(init.status, 0) << init.out;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string model() { return dir_ + "/model"; }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }

  // `grpo ARGS`, stdout and stderr together when merge (errors), else stdout only.
  static Result run(std::vector<std::string> args, bool merge = false) {
    args.insert(args.begin(), GRPO_BINARY);
    Subprocess p(args, "/dev/null", merge);
    std::string out = p.read_all();
    return {p.wait(120'000), out};
  }
  // eval on the random model with the given extra arguments.
  static Result eval(std::vector<std::string> extra, bool merge = false) {
    std::vector<std::string> args = {"eval", "--model", model(), "--tokenizer", kTok, "--threads", "1", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args, merge);
  }
  static std::vector<json> lines(const std::string& file) {
    std::vector<json> v;
    std::ifstream in(file);
    for (std::string l; std::getline(in, l);) v.push_back(json::parse(l));
    return v;
  }
  static std::string slurp(const std::string& file) {
    std::stringstream ss;
    ss << std::ifstream(file).rdbuf();
    return ss.str();
  }

  static std::string dir_;
};
std::string CliEval::dir_;

// pass@k = 1 − C(n−c,k)/C(n,k), as in eval/eval.h, to recompute the summary from the samples.
double pass_at(int n, int c, int k) {
  if (n - c < k) return 1.0;
  double p = 1.0;
  for (int i = n - c + 1; i <= n; ++i) p *= 1.0 - double(k) / i;
  return 1.0 - p;
}

TEST_F(CliEval, Gsm8kSliceSummaryMatchesTheSamples) {
  Result r = eval({"--data",
                   kData + "/math/gsm8k_test.jsonl",
                   "--format",
                   "gsm8k",
                   "--limit",
                   "3",
                   "--samples",
                   "4",
                   "--k",
                   "1,2,4",
                   "--max-new-tokens",
                   "12",
                   "--temperature",
                   "1",
                   "--top-p",
                   "1",
                   "--seed",
                   "5",
                   "--out",
                   path("gsm.json"),
                   "--samples-out",
                   path("gsm.jsonl")});
  ASSERT_EQ(r.status, 0) << r.out;
  json summary = json::parse(r.out);
  EXPECT_EQ(summary, json::parse(slurp(path("gsm.json"))));
  EXPECT_EQ(summary["prompts"], 3);
  EXPECT_EQ(summary["samples"], 12);
  EXPECT_EQ(summary["verifier"], "math");
  EXPECT_EQ(summary["dataset"]["format"], "gsm8k");
  const json& m = summary["metrics"];
  for (const char* key : {"pass@1", "mean_reward", "format_rate", "answer_rate", "truncated_rate"}) {
    ASSERT_TRUE(m[key].is_number()) << key;
    EXPECT_GE(m[key].get<double>(), 0.0) << key;
    EXPECT_LE(m[key].get<double>(), 1.0) << key;
  }
  EXPECT_GE(m["mean_response_tokens"].get<double>(), 1.0);
  EXPECT_LE(m["mean_response_tokens"].get<double>(), 12.0);
  EXPECT_LE(m["pass@k"]["1"].get<double>(), m["pass@k"]["2"].get<double>());
  EXPECT_LE(m["pass@k"]["2"].get<double>(), m["pass@k"]["4"].get<double>());

  std::vector<json> s = lines(path("gsm.jsonl"));
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(s[0]["id"], kData + "/math/gsm8k_test.jsonl:1");
  EXPECT_EQ(s[0]["reference"], "18");
  EXPECT_NE(s[0]["prompt"].get<std::string>().find("Janet"), std::string::npos);
  EXPECT_NE(s[0]["prompt"].get<std::string>().find("<think>"), std::string::npos);  // r1-zero template
  double tokens = 0, correct = 0, truncated = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s[i]["sample"], i % 4);
    tokens += s[i]["tokens"].get<double>();
    correct += s[i]["correct"].get<bool>();
    truncated += s[i]["finish_reason"] == "length";
  }
  EXPECT_DOUBLE_EQ(m["mean_response_tokens"].get<double>(), tokens / 12);
  EXPECT_DOUBLE_EQ(m["pass@1"].get<double>(), correct / 12);
  EXPECT_DOUBLE_EQ(m["truncated_rate"].get<double>(), truncated / 12);
}

// The overlong verifier's verdict is "length <= max_len − cache" in tokens: a verifier whose
// correct/incorrect split is known from the samples alone, so pass@k and the per-sample verdicts
// are checked end to end (sampling -> token counts -> verifier -> estimator).
TEST_F(CliEval, KnownVerdictsGiveTheEstimatorsValues) {
  std::ofstream(path("reward.yaml")) << "verifiers:\n  overlong: {max_len: 7, cache: 1, length_unit: tokens}\n";
  Result r = eval({"--data",
                   kData + "/math/aime24.jsonl",
                   "--format",
                   "aime",
                   "--limit",
                   "4",
                   "--samples",
                   "3",
                   "--k",
                   "1,3",
                   "--max-new-tokens",
                   "10",
                   "--temperature",
                   "1",
                   "--stop",
                   "a",
                   "--reward-config",
                   path("reward.yaml"),
                   "--verifier",
                   "overlong",
                   "--samples-out",
                   path("ov.jsonl")});
  ASSERT_EQ(r.status, 0) << r.out;
  json m = json::parse(r.out)["metrics"];
  std::vector<json> s = lines(path("ov.jsonl"));
  ASSERT_EQ(s.size(), 12u);
  double p1 = 0, p3 = 0;
  int any_right = 0, any_wrong = 0;
  for (int p = 0; p < 4; ++p) {
    int c = 0;
    for (int k = 0; k < 3; ++k) {
      const json& x = s[p * 3 + k];
      EXPECT_EQ(x["correct"], x["tokens"].get<int>() <= 6) << x.dump();
      c += x["correct"].get<bool>();
    }
    any_right += c > 0;
    any_wrong += c < 3;
    p1 += pass_at(3, c, 1) / 4;
    p3 += pass_at(3, c, 3) / 4;
  }
  EXPECT_NEAR(m["pass@k"]["1"].get<double>(), p1, 1e-12);
  EXPECT_NEAR(m["pass@k"]["3"].get<double>(), p3, 1e-12);
  EXPECT_NEAR(m["pass@1"].get<double>(), p1, 1e-12);
  EXPECT_EQ(m["maj@k"]["1"], 0.0);  // overlong extracts no answer: no votes
  std::cout << "overlong split: prompts with a correct sample " << any_right << ", with a wrong one " << any_wrong
            << "\n";
}

TEST_F(CliEval, RewardServerGivesTheSameSummaryAsInProcess) {
  Subprocess server({GRPO_BINARY, "reward-server", "--config", (GRPO_SOURCE_DIR "/configs/reward.yaml"),
                     "server.address=127.0.0.1:0", "server.workers=2"});
  std::string first = server.read_line();
  const std::string prefix = "reward-server listening on ";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  std::string address = first.substr(prefix.size(), first.find(' ', prefix.size()) - prefix.size());

  // A run config supplies the dataset, template and reward sections.
  std::ofstream(path("run.yaml")) << "template: r1-zero-boxed\n"
                                     "data:\n  heldout: {path: " +
                                         kData +
                                         "/math/math500.jsonl, format: math500, limit: 3}\n"
                                         "reward: {config: " GRPO_SOURCE_DIR "/configs/reward.yaml, verifier: r1}\n";
  std::vector<std::string> common = {"--config", path("run.yaml"), "--samples", "2", "--max-new-tokens",
                                     "8",        "--temperature",  "1"};
  Result local = eval(common);
  ASSERT_EQ(local.status, 0) << local.out;
  std::vector<std::string> remote_args = common;
  remote_args.push_back("reward.address=" + address);
  Result remote = eval(remote_args);
  ASSERT_EQ(remote.status, 0) << remote.out;
  json a = json::parse(local.out), b = json::parse(remote.out);
  EXPECT_EQ(a["verifier"], "r1");
  EXPECT_EQ(a["prompts"], 3);
  EXPECT_EQ(a["metrics"], b["metrics"]);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0);
}

TEST_F(CliEval, HumanEvalItemsGoToTheCodeVerifier) {
  Result r = eval({"--data", kData + "/code/HumanEval.jsonl.gz", "--format", "humaneval", "--limit", "2",
                   "--max-new-tokens", "6", "--template", "chatml", "--samples-out", path("he.jsonl")});
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<json> s = lines(path("he.jsonl"));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["id"], "HumanEval/0");
  EXPECT_EQ(s[0]["verifier"], "code");
  EXPECT_FALSE(s[0]["correct"].get<bool>());  // six random tokens define no function
  EXPECT_FALSE(s[0]["reason"].get<std::string>().empty());
  EXPECT_EQ(json::parse(r.out)["metrics"]["pass@1"], 0.0);
}

TEST_F(CliEval, BadInputIsNamed) {
  auto error_of = [](std::vector<std::string> extra) {
    Result r = eval(extra, true);
    EXPECT_EQ(r.status, 2) << r.out;
    return r.out;
  };
  std::string e = error_of({"--data", path("absent.jsonl")});
  EXPECT_NE(e.find(path("absent.jsonl") + ": cannot open the dataset file"), std::string::npos) << e;
  e = error_of({"--data", kData + "/math/gsm8k_test.jsonl", "--format", "gsm8k", "--prompt-field", "q"});
  EXPECT_NE(e.find("gsm8k_test.jsonl:1: missing field \"q\""), std::string::npos) << e;
  e = error_of({"--data", kData + "/math/gsm8k_test.jsonl", "--format", "csv"});
  EXPECT_NE(e.find("unknown dataset format 'csv'"), std::string::npos) << e;
  e = error_of({"--data", kData + "/math/aime24.jsonl", "--format", "aime", "--samples", "2", "--k", "3"});
  EXPECT_NE(e.find("--k: expected comma-separated integers in 1..--samples (2), got \"3\""), std::string::npos) << e;
  e = error_of({"--data", kData + "/math/aime24.jsonl", "--format", "aime", "--verifier", "nope"});
  EXPECT_NE(e.find("unknown verifier 'nope'"), std::string::npos) << e;
  e = error_of({});
  EXPECT_NE(e.find("give --data FILE, or --config with a data.heldout section"), std::string::npos) << e;
  e = error_of({"--format", "gsm8k"});
  EXPECT_NE(e.find("--format describes --data, which is not given"), std::string::npos) << e;
  std::ofstream(path("bad_run.yaml")) << "data:\n  heldout: {path: x.jsonl, formt: gsm8k}\n";
  e = error_of({"--config", path("bad_run.yaml")});
  EXPECT_NE(e.find("bad_run.yaml: key 'data.heldout.formt': unknown key"), std::string::npos) << e;
}

}  // namespace
