// Our PCRE2 translation of tokenizer regexes against Oniguruma, the engine HF tokenizers uses:
// onig_splits.jsonl holds the matches libonig (6.9) found, written by make_onig_splits.py.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "common/error.h"
#include "tokenizer/regex.h"

using grpo::Regex;

namespace {
std::vector<std::pair<size_t, size_t>> find_all(const Regex& re, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> out;
  re.find_all(text, out);
  return out;
}
std::string error_of(std::string_view pattern) {
  try {
    Regex::onig(pattern, "test.json: key 'p'");
  } catch (const grpo::InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(TokenizerRegex, MatchesOnigurumaOnEveryReferenceCase) {
  std::ifstream in(std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/onig_splits.jsonl");
  ASSERT_TRUE(in) << "missing onig_splits.jsonl";
  std::map<std::string, Regex> compiled;
  std::string line;
  size_t n = 0, patterns = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const std::string pattern = j["pattern"], text = j["text"];
    auto it = compiled.find(pattern);
    if (it == compiled.end()) {
      it = compiled.emplace(pattern, Regex::onig(pattern, "reference")).first;
      ++patterns;
    }
    std::vector<std::pair<size_t, size_t>> expected;
    for (const auto& m : j["matches"]) expected.emplace_back(m[0].get<size_t>(), m[1].get<size_t>());
    ASSERT_EQ(find_all(it->second, text), expected) << "pattern " << pattern << "\ntext " << nlohmann::json(text);
    ++n;
  }
  EXPECT_EQ(patterns, 20u);
  EXPECT_GT(n, 6000u);
}

TEST(TokenizerRegex, TranslatesOnigurumaOnlyConstructs) {
  EXPECT_EQ(grpo::onig_to_pcre2(R"([\u4e00-\u9fa5])"), R"([\x{4e00}-\x{9fa5}])");
  EXPECT_EQ(grpo::onig_to_pcre2(R"(\s+(?!\S))"), R"(\p{White_Space}+(?!\P{White_Space}))");
  EXPECT_EQ(grpo::onig_to_pcre2(R"([^\s\p{L}])"), R"([^\p{White_Space}\p{L}])");
  EXPECT_EQ(grpo::onig_to_pcre2(R"(\h{,2})"), R"([0-9a-fA-F]{0,2})");
  EXPECT_EQ(grpo::onig_to_pcre2(R"((?m:a.b)\v)"), R"((?s:a.b)\x0B)");
  EXPECT_EQ(grpo::onig_to_pcre2(R"((?i:'s)|(?:x)|(?<n>y)\k<n>)"), R"((?i:'s)|(?:x)|(?<n>y)\k<n>)");
  EXPECT_EQ(grpo::onig_to_pcre2(R"([]a][[:alpha:]]\x{41}\p{^L}\p{Han})"),
            R"([\]a][\p{Alphabetic}]\x{41}\P{L}\p{sc:Han})");
  EXPECT_EQ(grpo::onig_to_pcre2(R"([\w\b])"), R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x08])");
}

TEST(TokenizerRegex, InvalidUtf8IsNeverMatchedAndNeverCrashes) {
  Regex re = Regex::onig(R"(\p{L}+|\s+|.)", "test");
  const std::string text = "ab\xff\xfe cd\xc3(\xe4\xb8";
  auto m = find_all(re, text);
  // Letters, spaces and ASCII punctuation match; each invalid byte stays between matches.
  std::vector<std::pair<size_t, size_t>> expected = {{0, 2}, {4, 5}, {5, 7}, {8, 9}};
  EXPECT_EQ(m, expected);
}

TEST(TokenizerRegex, EmptyMatchesFollowOnigurumaIteration) {
  Regex empty = Regex::onig("", "test");
  std::vector<std::pair<size_t, size_t>> expected = {{0, 0}, {1, 1}, {3, 3}};
  EXPECT_EQ(find_all(empty, "a\xc3\xa9"), expected);  // steps over whole characters
  Regex literal = Regex::literal("a.b", "test");
  EXPECT_EQ(find_all(literal, "axb a.b"), (std::vector<std::pair<size_t, size_t>>{{4, 7}}));
}

TEST(TokenizerRegex, LongWhitespaceRunsStayWithinTheMatchLimit) {
  // \s+$ backtracks once per byte before \s+(?!\S) matches: more steps than PCRE2's default limit.
  Regex re = Regex::onig(R"(\s+$|\s+(?!\S)|\S+)", "test");
  std::string text;
  text.append(12'000'000, ' ').append("x");
  EXPECT_EQ(find_all(re, text), (std::vector<std::pair<size_t, size_t>>{{0, 11'999'999}, {12'000'000, 12'000'001}}));
}

TEST(TokenizerRegex, UnsupportedConstructsNameTheKeyAndTheReason) {
  EXPECT_NE(error_of("[a-z&&[^aeiou]]").find("class intersection"), std::string::npos);
  EXPECT_NE(error_of("[a[bc]]").find("nested character classes"), std::string::npos);
  EXPECT_NE(error_of(R"([\W])").find("\\W inside a character class"), std::string::npos);
  EXPECT_NE(error_of(R"(\y)").find("unsupported escape \\y"), std::string::npos);
  EXPECT_NE(error_of(R"(\u12)").find("four hex digits"), std::string::npos);
  EXPECT_NE(error_of("(?a:x)").find("unsupported group option 'a'"), std::string::npos);
  EXPECT_NE(error_of("[abc").find("unterminated character class"), std::string::npos);
  EXPECT_NE(error_of("[[:^word:]]").find("[:^word:] is not supported"), std::string::npos);
  EXPECT_NE(error_of("[[:graph:]]").find("[:graph:] is not supported"), std::string::npos);
  const std::string bad = error_of("(ab");
  EXPECT_NE(bad.find("test.json: key 'p'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("does not compile"), std::string::npos) << bad;
}
