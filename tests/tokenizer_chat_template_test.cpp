// Chat templates: the rendered strings are pinned exactly.
#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer_test_util.h"

using grpo::ChatTemplate;
using grpo::Config;
using grpo::testing::error_of;

namespace {
const std::string kR1Zero =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>.";
}  // namespace

TEST(ChatTemplate, R1ZeroIsThePapersPrompt) {
  auto t = ChatTemplate::builtin("r1-zero");
  EXPECT_EQ(t.render({{"user", "What is 2+3?"}}, true), kR1Zero + " User: What is 2+3?. Assistant:");
  EXPECT_EQ(t.render({{"user", "What is 2+3?"}}, false), kR1Zero + " User: What is 2+3?.");
  EXPECT_EQ(t.render({{"user", "q"}, {"assistant", " <think> a </think> <answer> 5 </answer>"}}, false),
            kR1Zero + " User: q. Assistant: <think> a </think> <answer> 5 </answer>");
}

TEST(ChatTemplate, R1ZeroBoxedAsksForBoxedAnswers) {
  auto t = ChatTemplate::builtin("r1-zero-boxed");
  EXPECT_EQ(t.render({{"user", "Compute 6*7"}}, true),
            "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
            "assistant first thinks about the reasoning process in the mind and then provides the user with the "
            "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
            "tags, respectively, with the final answer written in \\boxed{}, i.e., <think> reasoning process here "
            "</think> <answer> \\boxed{answer here} </answer>. User: Compute 6*7. Assistant:");
}

TEST(ChatTemplate, ChatMlWithAndWithoutSystem) {
  auto t = ChatTemplate::builtin("chatml");
  EXPECT_EQ(t.render({{"user", "hi"}}, true), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render({{"system", "Be brief."}, {"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}}, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, SystemMessageReplacesTheDefault) {
  auto t = ChatTemplate::builtin("r1-zero");
  EXPECT_EQ(t.render({{"system", "Sys."}, {"user", "q"}}, true), "Sys. User: q. Assistant:");
}

TEST(ChatTemplate, CustomFieldsFromYaml) {
  auto c = Config::parse(
      "prefix: \"<s>\"\nsystem: You solve math.\nsystem_suffix: \"\\n\"\nuser_prefix: \"Q: \"\n"
      "user_suffix: \"\\n\"\nassistant_prefix: \"A: <think>\"\n",
      "t.yaml");
  auto t = ChatTemplate::from_config(c);
  EXPECT_EQ(t.render({{"user", "1+1?"}}, true), "<s>You solve math.\nQ: 1+1?\nA: <think>");
  EXPECT_EQ(t.generation_prompt, "A: <think>");  // follows assistant_prefix
}

TEST(ChatTemplate, NamedTemplateWithOverridesAndNested) {
  auto c = Config::parse(
      "rollout:\n  chat_template:\n    name: r1-zero\n    generation_prompt: \" Assistant: <think>\"\n", "run.yaml");
  auto t = ChatTemplate::from_config(c.sub("rollout.chat_template"));
  EXPECT_EQ(t.render({{"user", "q"}}, true), kR1Zero + " User: q. Assistant: <think>");
}

TEST(ChatTemplate, ExampleConfigForcesTheThinkBlock) {
  auto t = ChatTemplate::load(std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/chatml-think.yaml");
  EXPECT_EQ(t.render({{"user", "2+2?"}}, true),
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(ChatTemplate::load("chatml").user_prefix, "<|im_start|>user\n");
}

TEST(ChatTemplate, ErrorsNameTheFileAndKey) {
  auto msg = [](const std::string& yaml) {
    return error_of([&] { ChatTemplate::from_config(Config::parse(yaml, "tpl.yaml")); });
  };
  EXPECT_NE(msg("name: r2-hero\n").find("tpl.yaml: key 'name': unknown chat template \"r2-hero\" (built-ins: r1-zero"),
            std::string::npos)
      << msg("name: r2-hero\n");
  EXPECT_NE(msg("user_prefx: x\n").find("tpl.yaml: key 'user_prefx': unknown key"), std::string::npos);
  EXPECT_NE(msg("user_prefix: [a, b]\n").find("tpl.yaml: key 'user_prefix': expected a string"), std::string::npos);
  EXPECT_NE(msg("{}\n").find("tpl.yaml: key 'name': required key is missing"), std::string::npos);
  EXPECT_NE(error_of([] { ChatTemplate::load("/nonexistent/t.yaml"); }).find("/nonexistent/t.yaml"), std::string::npos);
  EXPECT_NE(error_of([] { ChatTemplate::load("nosuch"); }).find("unknown chat template \"nosuch\""), std::string::npos);
  auto t = ChatTemplate::builtin("chatml");
  EXPECT_NE(error_of([&] {
              t.render({{"user", "a"}, {"tool", "b"}}, true);
            }).find("messages[1].role: unknown role \"tool\""),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              t.render({{"user", "a"}, {"system", "b"}}, true);
            }).find("messages[1].role: a system message may only come first"),
            std::string::npos);
}
