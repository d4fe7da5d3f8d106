// `grpo tokenize` and `grpo chat-template` run as users run them: JSONL through the binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "grpo_cli.h"

namespace {

const std::string kTokDir = std::string(GRPO_TEST_DATA) + "/bpe-tokenizer";

struct Outcome {
  int code;
  std::vector<std::string> lines;  // stdout lines
  std::string err;                 // stderr
};

// Runs `grpo ARGS < input` and collects stdout lines and stderr.
Outcome run(const std::string& args, const std::string& input) {
  static const grpo_test::ScratchDir scratch("grpo_cli_tokenize");  // stdin/stderr files
  grpo_test::CliResult r = grpo_test::run_grpo(args, scratch.path(), input);
  Outcome o{r.code, {}, r.err};
  std::stringstream ss(r.out);
  for (std::string line; std::getline(ss, line);) o.lines.push_back(line);
  return o;
}

nlohmann::json parse(const std::string& line) { return nlohmann::json::parse(line); }

}  // namespace

TEST(CliTokenize, EncodesEveryHfCaseAndReportsBadLinesInPlace) {
  std::ifstream cases(kTokDir + "/cases.jsonl");
  std::vector<nlohmann::json> expected;
  std::string input, line;
  while (std::getline(cases, line)) {
    auto j = nlohmann::json::parse(line);
    expected.push_back(j["ids"]);
    input += nlohmann::json{{"text", j["text"]}}.dump() + "\n";
    if (expected.size() == 3) {  // bad lines in the middle: invalid JSON, missing field, wrong type
      input += "{not json\n{\"txt\": \"x\"}\n{\"text\": 5}\n";
      expected.insert(expected.end(), 3, nullptr);
    }
  }
  Outcome r = run("tokenize --tokenizer " + kTokDir, input);
  EXPECT_EQ(r.code, 1) << r.err;
  ASSERT_EQ(r.lines.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    auto j = parse(r.lines[i]);
    if (expected[i].is_null()) {
      ASSERT_TRUE(j.contains("error")) << r.lines[i];
      EXPECT_EQ(j["error"].get<std::string>().rfind("line " + std::to_string(i + 1) + ": ", 0), 0u) << r.lines[i];
    } else {
      EXPECT_EQ(j, (nlohmann::json{{"ids", expected[i]}})) << "line " << i + 1;
    }
  }
  EXPECT_NE(parse(r.lines[3])["error"].get<std::string>().find("invalid JSON"), std::string::npos);
  EXPECT_NE(parse(r.lines[4])["error"].get<std::string>().find("missing field \"text\""), std::string::npos);
  EXPECT_NE(parse(r.lines[5])["error"].get<std::string>().find("field \"text\" must be a string"), std::string::npos);
}

TEST(CliTokenize, AllGoodLinesExitZero) {
  Outcome r =
      run("tokenize --tokenizer " + kTokDir + "/tokenizer.json", "{\"text\": \"Hello, world!\"}\n{\"text\": \"\"}");
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0], R"({"ids":[1673,79,336,15,331,275,698,4]})");
  EXPECT_EQ(r.lines[1], R"({"ids":[]})");
}

TEST(CliTokenize, DecodesAndSkipsSpecialTokens) {
  const std::string input =
      "{\"ids\": [2, 47, 620, 490, 845, 1435, 224, 26, 13, 27, 17, 3, 224, 24, 25]}\n{\"ids\": [3000]}\n"
      "{\"ids\": \"12\"}\n{\"ids\": [1673]}\n";
  Outcome r = run("tokenize --decode --tokenizer " + kTokDir, input);
  EXPECT_EQ(r.code, 1);
  ASSERT_EQ(r.lines.size(), 4u);
  EXPECT_EQ(parse(r.lines[0])["text"], "<think>Let me compute 7*8.</think> 56");
  EXPECT_NE(r.lines[1].find("line 2: decode: ids[0] = 3000 is not a token"), std::string::npos) << r.lines[1];
  EXPECT_NE(r.lines[2].find("line 3: field \\\"ids\\\" must be an array of integers"), std::string::npos) << r.lines[2];
  EXPECT_EQ(parse(r.lines[3])["text"], "He");
  Outcome s = run("tokenize --decode --skip-special --tokenizer " + kTokDir, input.substr(0, input.find('\n') + 1));
  EXPECT_EQ(s.code, 0);
  EXPECT_EQ(parse(s.lines.at(0))["text"], "Let me compute 7*8. 56");
}

TEST(CliTokenize, OverlongLinesAreReportedAndSkipped) {
  std::string big = "{\"text\": \"" + std::string(5000, 'a') + "\"}\n";
  Outcome r = run("tokenize --max-line-bytes 100 --tokenizer " + kTokDir, big + "{\"text\": \"ok\"}\n");
  EXPECT_EQ(r.code, 1);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_NE(r.lines[0].find("line 1: longer than --max-line-bytes 100"), std::string::npos) << r.lines[0];
  EXPECT_TRUE(parse(r.lines[1]).contains("ids"));
}

TEST(CliTokenize, BadTokenizerOrOptions) {
  Outcome missing = run("tokenize", "");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("missing required option --tokenizer"), std::string::npos) << missing.err;
  Outcome bad = run("tokenize --tokenizer /nonexistent/dir/tokenizer.json", "{\"text\": \"x\"}\n");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("/nonexistent/dir/tokenizer.json: cannot open file"), std::string::npos) << bad.err;
  EXPECT_TRUE(bad.lines.empty());
}

TEST(CliChatTemplate, RendersPromptsAndConversations) {
  const std::string input =
      "{\"prompt\": \"What is 2+3?\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \" a\"}]}\n"
      "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n"
      "{\"messages\": [{\"role\": \"user\"}]}\n"
      "{}\n";
  Outcome r = run("chat-template --template r1-zero", input);
  EXPECT_EQ(r.code, 1);
  ASSERT_EQ(r.lines.size(), 5u);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  const std::string text = parse(r.lines[0])["text"];
  EXPECT_EQ(text.rfind("A conversation between User and Assistant.", 0), 0u) << text;
  EXPECT_TRUE(ends_with(text, "</answer>. User: What is 2+3?. Assistant:")) << text;
  const std::string convo = parse(r.lines[1])["text"];
  EXPECT_TRUE(ends_with(convo, "</answer>. User: q. Assistant: a Assistant:")) << convo;
  EXPECT_NE(r.lines[2].find("line 3: messages[0].role: unknown role"), std::string::npos) << r.lines[2];
  EXPECT_NE(r.lines[3].find("line 4: messages[0]: missing field \\\"content\\\""), std::string::npos) << r.lines[3];
  EXPECT_NE(r.lines[4].find("line 5: missing field \\\"messages\\\""), std::string::npos) << r.lines[4];
}

TEST(CliChatTemplate, YamlTemplateAndNoGenerationPrompt) {
  const std::string yaml = std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/chatml-think.yaml";
  Outcome r = run("chat-template --template " + yaml, "{\"prompt\": \"hi\"}\n");
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(parse(r.lines[0])["text"],
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  Outcome n = run("chat-template --no-generation-prompt --template chatml", "{\"prompt\": \"hi\"}\n");
  EXPECT_EQ(parse(n.lines.at(0))["text"], "<|im_start|>user\nhi<|im_end|>\n");
  Outcome bad = run("chat-template --template nosuch", "");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unknown chat template \"nosuch\""), std::string::npos) << bad.err;
}
