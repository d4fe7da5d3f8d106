// Deeply nested input, the shape that overflows a recursive parser's or walker's stack: a real
// reward server on loopback answers INVALID_ARGUMENT naming the field for a JSON reference or
// options nested past limits.max_json_depth and keeps serving; a fuzz loop sends [ and { nesting
// (and math-style nesting) in every field to every verifier; `grpo verify` and the other commands
// that read JSON or YAML answer a clean error (never a signal); YAML configs nested in flow or
// block style are refused naming the file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/json_parse.h"
#include "reward/client.h"
#include "reward/registry.h"
#include "reward/server.h"
#include "tests/grpo_cli.h"
#include "tests/subprocess.h"

using namespace grpo::reward;

namespace {

const std::string kConfig = GRPO_SOURCE_DIR "/configs/reward.yaml";
const std::string kTooDeep = "nested deeper than the limit of";
constexpr int kDeep = 100'000;

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * n);
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// The nestings every parser is fed, `depth` levels deep: arrays, objects, both mixed, unclosed
// (also invalid), and the nesting a math expression has.
std::vector<std::string> nestings(int depth) {
  return {repeat("[", depth) + repeat("]", depth),
          repeat("{\"a\":", depth) + "1" + repeat("}", depth),
          repeat("[{\"a\":", (depth + 1) / 2) + "0" + repeat("}]", (depth + 1) / 2),
          repeat("[", depth),
          repeat("(", depth) + "1" + repeat(")", depth),
          "\\boxed{" + repeat("{", depth) + "1" + repeat("}", depth) + "}"};
}

bool is_json_nesting(const std::string& s) { return s[0] == '[' || s[0] == '{'; }

v1::ScoreRequest request(const std::string& verifier, const std::string& completion) {
  v1::ScoreRequest r;
  r.set_verifier(verifier);
  r.set_completion(completion);
  return r;
}

grpc::StatusCode code_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const grpo::RpcError& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return grpc::OK;
}

class DepthServerTest : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& overrides = {}) {
    const grpo::Config config = grpo::Config::load(kConfig, overrides);
    ServerOptions o = server_options_from_config(config);
    o.address = "127.0.0.1:0";
    server_ = std::make_unique<RewardServer>(registry_from_config(config), o);
    server_->start();
    grpo::ClientOptions co;
    co.timeout_ms = 60'000;
    client_ = std::make_unique<RewardClient>(server_->address(), co);
  }
  void SetUp() override { start(); }
  // The server still scores an ordinary request.
  void expect_serving() {
    const v1::ScoreResponse r = client_->score(request("format", "<think>a</think> b"));
    EXPECT_DOUBLE_EQ(r.reward(), 1.0);
  }

  std::unique_ptr<RewardServer> server_;
  std::unique_ptr<RewardClient> client_;
};

}  // namespace

TEST_F(DepthServerTest, DeepJsonReferenceIsInvalidArgumentAndServingContinues) {
  v1::ScoreRequest r = request("math", "<think>x</think> 4");
  r.set_reference(repeat("[", kDeep) + repeat("]", kDeep));
  r.set_reference_is_json(true);
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("reference: JSON nested deeper than the limit of 256 levels (at byte 256)"), std::string::npos)
      << msg;
  expect_serving();

  v1::ScoreRequest o = request("format", "<think>a</think> b");
  o.set_options(repeat("{\"a\":", kDeep) + "1" + repeat("}", kDeep));
  EXPECT_EQ(code_of([&] { client_->score(o); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("options: JSON nested deeper than the limit of 256 levels"), std::string::npos) << msg;

  // In a batch: that item fails, its neighbours are scored.
  const auto batch = client_->score_batch({request("format", "<think>a</think> b"), r});
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_DOUBLE_EQ(batch[0].reward(), 1.0);
  EXPECT_EQ(batch[1].error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(batch[1].error_message().find("reference: JSON nested deeper"), std::string::npos);
  expect_serving();
}

TEST_F(DepthServerTest, TheDepthLimitIsConfigurable) {
  server_.reset();
  start({"limits.max_json_depth=4"});
  v1::ScoreRequest r = request("math", "<think>x</think> 4");
  r.set_reference_is_json(true);
  r.set_reference(R"({"answer": "4", "x": [[["y"]]]})");  // 4 levels: scored
  std::string msg;
  EXPECT_EQ(code_of([&] { EXPECT_TRUE(client_->score(r).correct()); }, &msg), grpc::OK) << msg;
  r.set_reference(R"({"answer": "4", "x": [[[["y"]]]]})");
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("reference: JSON nested deeper than the limit of 4 levels"), std::string::npos) << msg;
  EXPECT_THROW(server_options_from_config(grpo::Config::load(kConfig, {"limits.max_json_depth=0"})), grpo::InputError);
}

// Every verifier, every field, every nesting: the server answers each (a verdict or a status),
// JSON fields past the limit are INVALID_ARGUMENT naming the field, and the server keeps serving.
TEST_F(DepthServerTest, FuzzEveryVerifierAndFieldWithDeepNesting) {
  std::vector<std::string> verifiers;
  for (const auto& v : client_->list_verifiers()) verifiers.push_back(v.name());
  ASSERT_GE(verifiers.size(), 5u);
  int tried = 0, clean = 0;
  for (int depth : {257, 5'000, kDeep}) {
    for (const std::string& text : nestings(depth)) {
      for (const std::string& verifier : verifiers) {
        for (int field = 0; field < 4; ++field) {
          v1::ScoreRequest r = request(verifier, "<think>x</think> 4");
          if (field == 0) r.set_reference(text), r.set_reference_is_json(true);
          if (field == 1) r.set_reference(text);  // a plain string (code reads JSON from it)
          if (field == 2) r.set_options(text);
          if (field == 3) r.set_completion("<think>x</think> " + text);
          ++tried;
          std::string msg;
          const grpc::StatusCode code = code_of([&] { client_->score(r); }, &msg);
          const bool parsed_json = field == 0 || field == 2;
          if (parsed_json) {
            const char* name = field == 0 ? "reference: " : "options: ";
            const bool named = msg.find(name) != std::string::npos;
            // Deep enough: the depth bound; else invalid JSON (a math expression) - both name the field.
            if (code == grpc::INVALID_ARGUMENT && named)
              ++clean;
            else
              ADD_FAILURE() << verifier << " field " << field << " depth " << depth << ": " << code << " " << msg;
            if (is_json_nesting(text))
              EXPECT_NE(msg.find(kTooDeep), std::string::npos) << verifier << " field " << field << ": " << msg;
          } else if (code == grpc::OK || code == grpc::INVALID_ARGUMENT) {
            ++clean;  // a verdict, or a request error naming its field
          } else {
            ADD_FAILURE() << verifier << " field " << field << " depth " << depth << ": " << code << " " << msg;
          }
        }
      }
    }
  }
  expect_serving();
  std::cout << "reward server fuzz: " << clean << " of " << tried << " deeply nested requests answered cleanly\n";
  ::testing::Test::RecordProperty("tried", tried);
  ::testing::Test::RecordProperty("clean", clean);
  EXPECT_EQ(clean, tried);
}

// `grpo verify` with the same lines on stdin: an error line each, exit status 1, no signal.
TEST(InputDepth, VerifyAnswersDeepLinesWithErrorLines) {
  grpo_test::ScratchDir dir("grpo_depth_verify");
  std::string input;
  int lines = 0;
  for (const std::string& text : nestings(kDeep)) {
    if (!is_json_nesting(text)) continue;
    input += "{\"completion\": \"x\", \"reference\": " + text + "}\n";  // the line itself nests too deep
    input += text + "\n";
    lines += 2;
  }
  input += "{\"completion\": \"<think>a</think> b\"}\n";
  std::ofstream(dir.path() + "/in.jsonl") << input;
  grpo::testing::Subprocess p({GRPO_BINARY, "verify", "--verifier", "format"}, dir.path() + "/in.jsonl");
  const std::string out = p.read_all();
  EXPECT_EQ(p.wait(60'000), 1) << out;  // not 128 + SIGSEGV
  const auto results = grpo_test::json_lines(out);
  ASSERT_EQ(results.size(), static_cast<size_t>(lines + 1)) << out;
  int clean = 0;
  for (int i = 0; i < lines; ++i)
    clean += results[i].contains("error") && results[i]["error"].get<std::string>().find(kTooDeep) != std::string::npos;
  EXPECT_EQ(clean, lines) << out;
  EXPECT_DOUBLE_EQ(results.back()["reward"].get<double>(), 1.0);
  std::cout << "grpo verify: " << clean << " of " << lines << " deeply nested lines answered with an error line\n";

  // --options nested too deep: refused naming the flag.
  grpo::testing::Subprocess o({GRPO_BINARY, "verify", "--verifier", "format", "--options", repeat("[", 300)},
                              "/dev/null", true);
  const std::string err = o.read_all();
  EXPECT_EQ(o.wait(), 2) << err;
  EXPECT_NE(err.find("--options: JSON nested deeper than the limit of 256 levels"), std::string::npos) << err;
}

// The commands that read JSON files or lines: each answers a clean error naming its input.
TEST(InputDepth, CommandsReadingJsonRefuseDeepNesting) {
  grpo_test::ScratchDir dir("grpo_depth_cli");
  // 300 levels: deeper than the bound, within the line limits of tokenize and logprobs.
  const std::string deep = repeat("{\"a\":", 300) + "1" + repeat("}", 300);
  const std::string file = dir.path() + "/deep.json";
  std::ofstream(file) << deep;
  std::ofstream(dir.path() + "/deep.jsonl") << deep << "\n";
  struct Case {
    std::string args, input;
    int code;
  };
  const std::string fixture = std::string(GRPO_TEST_DATA) + "/dsv3-tiny";
  const std::vector<Case> cases = {
      {"init-model --config " + file + " --out " + dir.path() + "/m", "", 2},
      {"tokenize --tokenizer " + file, "", 2},
      {"tokenize --tokenizer " + std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/tokenizer.json", deep + "\n", 1},
      {"logprobs --model " + fixture + " --threads 1", deep + "\n", 1},
      {"generate --model " + fixture + " --max-new-tokens 1 --prompts " + dir.path() + "/deep.jsonl", "", 2},
      {"verify --verifier format --options '" + deep + "'", "", 2},
  };
  int clean = 0;
  for (const Case& c : cases) {
    const grpo_test::CliResult r = grpo_test::run_grpo(c.args, dir.path(), c.input);
    const bool ok = r.code == c.code && (r.out + r.err).find(kTooDeep) != std::string::npos;
    clean += ok;
    EXPECT_TRUE(ok) << c.args << ": exit " << r.code << "\n" << r.out << r.err;
  }
  std::cout << "commands: " << clean << " of " << cases.size() << " deeply nested inputs refused cleanly\n";
}

// YAML configs: flow and block nesting past the bound (yaml-cpp's own guard is 2000 levels, and
// its message "bad file"), in a file or an override, are InputErrors naming the source.
TEST(InputDepth, DeepYamlConfigsAreRefused) {
  std::vector<std::pair<std::string, std::string>> docs;
  for (int depth : {257, 1'999, 2'500, kDeep}) {
    docs.push_back({"flow list " + std::to_string(depth), "a: " + repeat("[", depth) + repeat("]", depth)});
    docs.push_back({"flow map " + std::to_string(depth), "a: " + repeat("{b: ", depth) + "1" + repeat("}", depth)});
    docs.push_back({"block list " + std::to_string(depth), "a:\n  " + repeat("- ", depth) + "x\n"});
  }
  for (int depth : {300, 2'500}) {
    std::string block;
    for (int i = 0; i < depth; ++i) block += std::string(static_cast<size_t>(i), ' ') + "b:\n";
    block += std::string(static_cast<size_t>(depth), ' ') + "c: 1\n";
    docs.push_back({"block map " + std::to_string(depth), block});
  }
  int clean = 0;
  for (const auto& [name, text] : docs) {
    try {
      grpo::Config::parse(text, "deep.yaml");
      ADD_FAILURE() << name << ": accepted";
    } catch (const grpo::InputError& e) {
      const std::string m = e.what();
      const bool ok = m.rfind("deep.yaml: YAML nested deeper than the limit of 256 levels", 0) == 0;
      clean += ok;
      EXPECT_TRUE(ok) << name << ": " << m;
    }
  }
  grpo::Config c = grpo::Config::parse("", "x.yaml");
  try {
    c.apply_override("a.b=" + repeat("[", kDeep));
    ADD_FAILURE() << "deep override accepted";
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("override 'a.b=[[[["), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("YAML nested deeper than the limit"), std::string::npos) << e.what();
  }
  std::cout << "yaml: " << clean << " of " << docs.size() << " deeply nested configs refused cleanly\n";
  EXPECT_EQ(clean, static_cast<int>(docs.size()));
}

// The helper itself: the bound is exact, strings (with escaped quotes) do not count.
TEST(InputDepth, JsonDepthScan) {
  EXPECT_NO_THROW(grpo::check_json_depth(repeat("[", 256) + repeat("]", 256), "x"));
  EXPECT_THROW(grpo::check_json_depth(repeat("[", 257), "x"), grpo::InputError);
  EXPECT_NO_THROW(grpo::check_json_depth("[\"" + repeat("[", 1000) + "\\\"" + repeat("{", 1000) + "\"]", "x"));
  EXPECT_EQ(grpo::parse_json("[[1]]", "x", 2), nlohmann::json::parse("[[1]]"));
  try {
    grpo::parse_json("[1,", "line 3");
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("line 3: invalid JSON: ", 0), 0u) << e.what();
  }
}
