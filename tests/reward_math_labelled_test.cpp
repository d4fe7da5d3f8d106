// Our own labelled pairs (tests/data/math/labelled_pairs.jsonl, see the README there): gold,
// completion, expected verdict, note. Default options; at least 98 % must be right.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>

#include "reward/math/math_verifier.h"

namespace grpo::reward::math {
namespace {

TEST(MathLabelledPairs, AtLeast98PercentCorrect) {
  std::ifstream in(std::string(GRPO_TEST_DATA) + "/math/labelled_pairs.jsonl");
  ASSERT_TRUE(in.good());
  std::string line;
  int total = 0, right = 0, negatives = 0;
  MathVerifierOptions options;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto r = nlohmann::json::parse(line);
    ++total;
    bool expected = r.at("expected").get<bool>();
    negatives += !expected;
    MathVerdict v = verify_math(r.at("pred").get<std::string>(), r.at("gold").get<std::string>(), options);
    if (v.correct == expected) {
      ++right;
    } else {
      std::cout << "MISS [" << r.at("note").get<std::string>() << "] expected " << (expected ? "equal" : "not equal")
                << ": " << v.reason << "\n";
    }
  }
  std::cout << "labelled pairs: " << right << "/" << total << " correct (" << negatives << " negatives)\n";
  EXPECT_GE(total, 200);
  EXPECT_GE(right * 100, total * 98);
}

}  // namespace
}  // namespace grpo::reward::math
