// Agreement with Math-Verify's own test suite (tests/data/math/mathverify_cases.jsonl): every
// (gold, pred) pair runs through our whole pipeline with the Math-Verify options of the case
// mapped onto ours; at least 95 % must agree, and every case Math-Verify expects to be NOT
// equivalent must be rejected.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>

#include "reward/math/extract.h"
#include "reward/math/math_verifier.h"

namespace grpo::reward::math {
namespace {

std::vector<nlohmann::json> load_cases() {
  std::ifstream in(std::string(GRPO_TEST_DATA) + "/math/mathverify_cases.jsonl");
  EXPECT_TRUE(in.good());
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Math-Verify's extraction targets and verify() flags, in our terms.
MathVerifierOptions options_for(const nlohmann::json& config) {
  MathVerifierOptions o;
  const auto& types = config.at("match_types");
  bool latex = true, expr = true;
  if (types.is_array()) {
    latex = expr = false;
    for (const auto& t : types) {
      latex = latex || t == "latex";
      expr = expr || t == "expr";
    }
  }
  using M = ExtractMethod;
  if (latex && !expr) o.extract.order = {M::Boxed, M::AnswerIs, M::LastLatex};
  if (expr && !latex) {
    o.extract.order = {M::AnswerIs, M::LastNumber};
    o.plain_reference = true;  // expr targets read numbers from plain text ("1,22" is 1.22)
  }
  if (config.contains("precision")) o.compare.float_rounding = config["precision"].get<int>();
  if (config.contains("strict")) o.compare.strict = config["strict"].get<bool>();
  if (config.contains("allow_set_relation_comp"))
    o.compare.allow_set_relation_comp = config["allow_set_relation_comp"].get<bool>();
  return o;
}

TEST(MathVerifyCases, AgreementAtLeast95PercentAndAllNegativesRejected) {
  auto rows = load_cases();
  int total = 0, agree = 0, negatives = 0, negatives_agree = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r["kind"] != "verify") continue;
    ++total;
    bool expected = r["expected"].get<bool>();
    MathVerdict v = verify_math(r["pred"].get<std::string>(), r["gold"].get<std::string>(), options_for(r["config"]));
    bool ok = v.correct == expected;
    agree += ok;
    if (!expected) {
      ++negatives;
      negatives_agree += ok;
    }
    if (!ok)
      std::cout << "DISAGREE row " << i << " (" << r["source"].get<std::string>() << ") expected "
                << (expected ? "equal" : "not equal") << ": " << v.reason << "\n";
  }
  std::cout << "Math-Verify agreement: " << agree << "/" << total << "; expected-false rejected: " << negatives_agree
            << "/" << negatives << "\n";
  EXPECT_EQ(total, 270);
  EXPECT_GE(agree * 100, total * 95);
  EXPECT_EQ(negatives_agree, negatives);
}

// Math-Verify's StringExtractionConfig cases: multiple-choice letters.
TEST(MathVerifyCases, ChoiceLetterExtraction) {
  auto rows = load_cases();
  int n = 0;
  for (const auto& r : rows) {
    if (r["kind"] != "string_extraction") continue;
    ++n;
    std::string letters = "ABCD";
    std::string cfg = r["config"]["extraction_config"].get<std::string>();
    if (cfg.find("strings=('U',)") != std::string::npos) letters = "U";
    auto got = extract_choice(r["pred"].get<std::string>(), letters);
    const auto& expected = r["expected"];
    if (expected.empty()) {
      EXPECT_FALSE(got.has_value()) << r["pred"];
    } else {
      ASSERT_TRUE(got.has_value()) << r["pred"];
      EXPECT_EQ(std::string(1, *got), expected[1].get<std::string>()) << r["pred"];
    }
  }
  EXPECT_EQ(n, 7);
}

}  // namespace
}  // namespace grpo::reward::math
