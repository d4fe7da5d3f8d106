// The tokenizer against HF tokenizers: tests/data/bpe-tokenizer/cases.jsonl holds texts and the
// ids HF's encode gave for them with that tokenizer.json (a DeepSeek-V3 style pre-tokenizer).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <thread>

#include "tokenizer/tokenizer.h"

namespace {

const std::string kDir = std::string(GRPO_TEST_DATA) + "/bpe-tokenizer";

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> load_cases() {
  std::ifstream in(kDir + "/cases.jsonl");
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>()});
  }
  return cases;
}

const grpo::Tokenizer& fixture() {
  static const grpo::Tokenizer tok = grpo::Tokenizer::load(kDir);
  return tok;
}

}  // namespace

TEST(TokenizerParity, EveryHfCaseEncodesToItsIdsAndDecodesBack) {
  auto cases = load_cases();
  ASSERT_EQ(cases.size(), 20u);
  for (const auto& c : cases) {
    EXPECT_EQ(fixture().encode(c.text), c.ids) << "text: " << c.text;
    EXPECT_EQ(fixture().decode(c.ids), c.text);
  }
}

TEST(TokenizerParity, SameIdsWithoutTheWordCache) {
  auto uncached = grpo::Tokenizer::load(kDir + "/tokenizer.json", {/*cache_capacity=*/0});
  for (const auto& c : load_cases()) EXPECT_EQ(uncached.encode(c.text), c.ids) << "text: " << c.text;
}

TEST(TokenizerParity, VocabularyAndSpecialTokens) {
  const auto& tok = fixture();
  EXPECT_EQ(tok.vocab_size(), 3000);
  EXPECT_EQ(tok.token_to_id("<think>"), 2);
  EXPECT_EQ(tok.token_to_id("</think>"), 3);
  EXPECT_EQ(tok.token_to_id("<｜begin▁of▁sentence｜>"), 0);
  EXPECT_EQ(tok.token_to_id("no such token"), -1);
  EXPECT_EQ(tok.id_to_token(224), "Ġ");
  EXPECT_EQ(tok.id_to_token(2), "<think>");
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_TRUE(tok.is_special(3));
  EXPECT_FALSE(tok.is_special(224));
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(5000));
  // No tokenizer_config.json beside the fixture: BOS/EOS are unknown.
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_EQ(tok.eos_id(), -1);
  EXPECT_THROW(tok.id_to_token(3000), grpo::InputError);
  EXPECT_THROW(tok.id_to_token(-1), grpo::InputError);
}

TEST(TokenizerParity, SpecialTokensInsideTextAndSkippingThemOnDecode) {
  const auto& tok = fixture();
  const std::string text = "<｜begin▁of▁sentence｜>x<think>y</think><think>";
  auto ids = tok.encode(text);
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "xy");
  // A special token string split across pieces is not a special token.
  auto partial = tok.encode("<thin k>");
  for (int32_t id : partial) EXPECT_FALSE(tok.is_special(id));
}

TEST(TokenizerParity, DecodeRejectsUnknownIds) {
  const auto& tok = fixture();
  try {
    tok.decode({5, 3000});
    FAIL() << "expected an InputError";
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ids[1] = 3000"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok.decode({-4}), grpo::InputError);
}

// decode(encode(s)) == s for random strings: ASCII, whitespace runs, digits, CJK, Hangul, emoji,
// combining marks, the special token strings and invalid byte sequences.
TEST(TokenizerParity, RandomStringsRoundTrip) {
  const auto& tok = fixture();
  const std::vector<std::string> atoms = {"a",
                                          "Z",
                                          "hello",
                                          " world",
                                          "x1",
                                          "_",
                                          "\\boxed{",
                                          "}",
                                          "(",
                                          ".",
                                          ",",
                                          "'s",
                                          "'ll",
                                          "$",
                                          "^",
                                          " ",
                                          "  ",
                                          "   ",
                                          "\t",
                                          "\n",
                                          "\r\n",
                                          "\n\n",
                                          "\u00a0",
                                          "\u3000",
                                          "\u2028",
                                          "\u0085",
                                          "0",
                                          "7",
                                          "42",
                                          "12345",
                                          "٣",
                                          "²",
                                          "Ⅻ",
                                          "中",
                                          "文本",
                                          "日本語",
                                          "の",
                                          "テキスト",
                                          "。",
                                          "龥",
                                          "一",
                                          "한",
                                          "국어",
                                          "토큰",
                                          "🚀",
                                          "🔥",
                                          "👍🏽",
                                          "👨‍👩‍👧",
                                          "🇯🇵",
                                          "e\u0301",
                                          "\u0301",
                                          "a\u0308\u0304",
                                          "ñ",
                                          "ü",
                                          "<think>",
                                          "</think>",
                                          "<｜begin▁of▁sentence｜>",
                                          "<｜end▁of▁sentence｜>",
                                          "<think",
                                          "think>",
                                          "\xff",
                                          "\xc3",
                                          "\xe4\xb8",
                                          "\x80\x80",
                                          "\xf0\x9f\x9a",
                                          "\xed\xa0\x80",
                                          "\xc0\xaf",
                                          "\xfe\xff"};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1), len(0, 24), byte(0, 255);
  for (int n = 0; n < 4000; ++n) {
    std::string s;
    for (size_t k = len(rng); k > 0; --k) {
      if (rng() % 10 == 0) {
        s += static_cast<char>(byte(rng));  // any byte at all
      } else {
        s += atoms[pick(rng)];
      }
    }
    auto ids = tok.encode(s);
    ASSERT_EQ(tok.decode(ids), s) << "case " << n;
  }
}

TEST(TokenizerParity, ConcurrentEncodesAgree) {
  const auto& tok = fixture();
  auto cases = load_cases();
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep)
        for (const auto& c : cases)
          if (tok.encode(c.text) != c.ids) ++failures[t];
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}
