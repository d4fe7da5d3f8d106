// Randomised robustness: thousands of random and mutated LaTeX strings through extraction,
// parsing and comparison. Every call must return (no exception, no crash), stay within its work
// budget — the per-call cost is checked by counting work units, not by timing — and be
// deterministic. Seeds are fixed, so a failure reproduces.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <random>

#include "reward/math/math_verifier.h"

namespace grpo::reward::math {
namespace {

const std::vector<std::string> kTokens = {"\\boxed{",
                                          "\\fbox{",
                                          "}",
                                          "{",
                                          "\\frac",
                                          "\\dfrac",
                                          "\\sqrt",
                                          "\\sqrt[3]",
                                          "^",
                                          "_",
                                          "(",
                                          ")",
                                          "[",
                                          "]",
                                          "\\{",
                                          "\\}",
                                          "\\left(",
                                          "\\right)",
                                          ",",
                                          ";",
                                          "=",
                                          "<",
                                          "\\le",
                                          "\\ge",
                                          "\\ne",
                                          "\\in",
                                          "\\cup",
                                          "\\pm",
                                          "+",
                                          "-",
                                          "*",
                                          "/",
                                          "\\cdot",
                                          "\\times",
                                          "!",
                                          "%",
                                          "\\%",
                                          ":",
                                          "|",
                                          "&",
                                          "\\\\",
                                          "$",
                                          "$$",
                                          "\\(",
                                          "\\)",
                                          "\\[",
                                          "\\]",
                                          "\\begin{pmatrix}",
                                          "\\end{pmatrix}",
                                          "\\begin{align}",
                                          "\\end{align}",
                                          "\\text{",
                                          "cm",
                                          "\\pi",
                                          "\\infty",
                                          "e",
                                          "i",
                                          "x",
                                          "y",
                                          "f(x)",
                                          "\\sin",
                                          "\\log_",
                                          "\\ln",
                                          "0",
                                          "1",
                                          "2",
                                          "3",
                                          "9",
                                          "10",
                                          "0.5",
                                          "1,000",
                                          "1e9",
                                          "10^{10^{10}}",
                                          "2^{",
                                          "\\zzz",
                                          "\\",
                                          " ",
                                          "\n",
                                          "and",
                                          "or",
                                          "the answer is",
                                          "<think>",
                                          "</think>",
                                          "<answer>",
                                          "</answer>",
                                          "\xe2\x88\x92",
                                          "\xcf\x80",
                                          "\xff",
                                          "\xc3",
                                          "\\mathrm{",
                                          "\\overline{",
                                          "\\lfloor",
                                          "\\rfloor",
                                          "\\sum_{k=0}^{n}",
                                          "\\binom",
                                          "\\angle",
                                          "^\\circ",
                                          "\\approx"};

std::vector<std::string> seeds() {
  std::vector<std::string> out;
  for (const char* file : {"/math/labelled_pairs.jsonl", "/math/mathverify_cases.jsonl"}) {
    std::ifstream in(std::string(GRPO_TEST_DATA) + file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto r = nlohmann::json::parse(line);
      for (const char* key : {"gold", "pred"})
        if (r.contains(key) && r[key].is_string()) out.push_back(r[key].get<std::string>().substr(0, 600));
    }
  }
  return out;
}

std::string random_tokens(std::mt19937_64& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kTokens[rng() % kTokens.size()];
  return s;
}

std::string mutate(std::string s, std::mt19937_64& rng) {
  int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits; ++e) {
    size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 8) {
      case 0: s.insert(pos, 1, static_cast<char>(rng() % 256)); break;  // any byte
      case 1:
        if (pos < s.size()) s.erase(pos, 1 + rng() % 4);
        break;                                                        // delete
      case 2: s.insert(pos, kTokens[rng() % kTokens.size()]); break;  // token
      case 3:
        if (!s.empty()) s = s.substr(0, pos);
        break;  // truncate
      case 4:
        if (pos < s.size()) s.insert(pos, s.substr(pos, 1 + rng() % 16));
        break;                                                                         // duplicate
      case 5: s = "\\boxed{" + s + "}"; break;                                         // wrap
      case 6: s.insert(pos, std::string(1 + rng() % 300, "({[|-"[rng() % 5])); break;  // deep / long
      case 7:
        if (pos < s.size()) s[pos] = "{}()[]$\\^_"[rng() % 10];
        break;  // structure
    }
  }
  return s;
}

TEST(MathFuzz, RandomAndMutatedInputsStayWithinBudget) {
  std::mt19937_64 rng(20240601);
  std::vector<std::string> corpus = seeds();
  ASSERT_GT(corpus.size(), 500u);
  MathVerifierOptions o;
  o.max_work = 200'000;
  o.extract.max_answer_bytes = 4000;
  int64_t max_work = 0;
  int calls = 0, correct = 0;
  for (int iter = 0; iter < 6000; ++iter) {
    std::string pred, gold;
    if (iter % 3 == 0) {
      pred = random_tokens(rng, 1 + rng() % 40);
      gold = random_tokens(rng, 1 + rng() % 10);
    } else {
      pred = mutate(corpus[rng() % corpus.size()], rng);
      gold = iter % 3 == 1 ? corpus[rng() % corpus.size()] : mutate(corpus[rng() % corpus.size()], rng);
    }
    if (gold.find_first_not_of(" \n") == std::string::npos) gold = "1";
    MathVerdict v;
    try {
      v = verify_math(pred, gold, o);
    } catch (...) {
      FAIL() << "verify_math threw on pred=" << nlohmann::json(pred).dump() << " gold=" << nlohmann::json(gold).dump();
    }
    ++calls;
    correct += v.correct;
    EXPECT_LE(v.work, o.max_work);
    EXPECT_FALSE(v.reason.empty());
    max_work = std::max(max_work, v.work);
    if (iter % 50 == 0) {  // deterministic: the same call gives the same verdict
      MathVerdict again = verify_math(pred, gold, o);
      EXPECT_EQ(again.correct, v.correct);
      EXPECT_EQ(again.reason, v.reason);
      EXPECT_EQ(again.work, v.work);
    }
  }
  std::cout << "fuzz: " << calls << " calls, " << correct << " judged equal, max work " << max_work << " of "
            << o.max_work << "\n";
}

TEST(MathFuzz, WorkBudgetStopsExpensiveComparisons) {
  // Many-element sets compared pairwise and big polynomial products: a small budget ends them
  // with "too complex" instead of letting them run.
  MathVerifierOptions o;
  o.max_work = 5000;
  std::string set = "\\{", reversed = "\\{";
  for (int i = 0; i < 60; ++i) {
    set += (i ? "," : "") + std::to_string(i) + "x+1";
    reversed += (i ? "," : "") + std::to_string(59 - i) + "x+1";
  }
  set += "\\}";
  reversed += "\\}";
  EXPECT_TRUE(verify_math("\\boxed{" + reversed + "}", set, MathVerifierOptions{}).correct);
  MathVerdict v = verify_math("\\boxed{" + reversed + "}", set, o);
  EXPECT_LE(v.work, o.max_work);
  EXPECT_NE(v.reason.find("too complex"), std::string::npos) << v.reason;
}

}  // namespace
}  // namespace grpo::reward::math
