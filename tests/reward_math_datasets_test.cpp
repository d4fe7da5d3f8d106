// Real worked solutions against their reference answers: every MATH-500 solution must verify
// against its own expected answer and be rejected against the next problem's (different) answer;
// the same for GSM8K test solutions and their "#### n" answers.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>

#include "reward/math/math_verifier.h"

namespace grpo::reward::math {
namespace {

std::vector<nlohmann::json> load(const std::string& name) {
  std::ifstream in(std::string(GRPO_TEST_DATA) + "/math/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

struct Score {
  int accepted = 0, total = 0, false_accepts = 0, negatives = 0;
};

Score run(const std::vector<std::pair<std::string, std::string>>& solution_answer) {
  Score s;
  MathVerifierOptions o;
  size_t n = solution_answer.size();
  for (size_t i = 0; i < n; ++i) {
    const auto& [solution, answer] = solution_answer[i];
    ++s.total;
    MathVerdict v = verify_math(solution, answer, o);
    if (v.correct)
      ++s.accepted;
    else
      std::cout << "REJECTED own answer #" << i << ": " << v.reason << "\n";
    const std::string& other = solution_answer[(i + 1) % n].second;
    if (other == answer) continue;
    ++s.negatives;
    MathVerdict w = verify_math(solution, other, o);
    if (w.correct) {
      ++s.false_accepts;
      std::cout << "ACCEPTED other answer #" << i << ": " << w.reason << "\n";
    }
  }
  return s;
}

TEST(MathDatasets, Math500SolutionsMatchTheirAnswersOnly) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& r : load("math500.jsonl")) pairs.emplace_back(r.at("solution"), r.at("expected_answer"));
  Score s = run(pairs);
  std::cout << "MATH-500: " << s.accepted << "/" << s.total << " accepted, " << s.false_accepts << "/" << s.negatives
            << " wrong answers accepted\n";
  EXPECT_EQ(s.total, 500);
  EXPECT_GE(s.accepted * 100, s.total * 99);
  EXPECT_EQ(s.false_accepts, 0);
}

TEST(MathDatasets, Gsm8kSolutionsMatchTheirAnswersOnly) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& r : load("gsm8k_test.jsonl")) {
    std::string text = r.at("answer");
    size_t hash = text.rfind("####");
    ASSERT_NE(hash, std::string::npos);
    std::string answer = text.substr(hash + 4);
    answer.erase(0, answer.find_first_not_of(' '));
    pairs.emplace_back(text, answer);
  }
  Score s = run(pairs);
  std::cout << "GSM8K test: " << s.accepted << "/" << s.total << " accepted, " << s.false_accepts << "/" << s.negatives
            << " wrong answers accepted\n";
  EXPECT_EQ(s.total, 1319);
  EXPECT_GE(s.accepted * 100, s.total * 99);
  EXPECT_EQ(s.false_accepts, 0);
}

}  // namespace
}  // namespace grpo::reward::math
