// Equivalence rules and their options (compare.h), through the whole pipeline.
#include <gtest/gtest.h>

#include "reward/math/math_verifier.h"

namespace grpo::reward::math {
namespace {

bool eq(const std::string& gold, const std::string& pred, MathVerifierOptions o = {}) {
  return verify_math("\\boxed{" + pred + "}", gold, o).correct;
}

MathVerifierOptions with(const std::function<void(MathVerifierOptions&)>& f) {
  MathVerifierOptions o;
  f(o);
  return o;
}

TEST(MathCompare, FloatRoundingFollowsPrecision) {
  EXPECT_TRUE(eq("\\frac{1}{3}", "0.333333"));
  EXPECT_FALSE(eq("\\frac{1}{3}", "0.3333"));
  auto four = with([](auto& o) { o.compare.float_rounding = 4; });
  EXPECT_TRUE(eq("\\frac{1}{3}", "0.3333", four));
  EXPECT_FALSE(eq("\\frac12", "0.52", four));
  auto two = with([](auto& o) { o.compare.float_rounding = 2; });
  EXPECT_TRUE(eq("\\frac{2}{3}", "0.67", two));
  EXPECT_FALSE(eq("\\frac{2}{3}", "0.66", two));
  // Tiny values compare by significant digits, not as 0 == 0.
  EXPECT_FALSE(eq("1.5\\times10^{-8}", "1.6\\times10^{-8}"));
  EXPECT_TRUE(eq("1.5\\times10^{-8}", "1.5e-8"));
  // Exact values never use rounding: 1/3 vs 333333/1000000 written as a fraction.
  EXPECT_FALSE(eq("\\frac{1}{3}", "\\frac{333333}{1000000}"));
}

TEST(MathCompare, RelativeToleranceOfNumericEvaluation) {
  EXPECT_TRUE(eq("\\sqrt{8}", "2\\sqrt{2}"));
  EXPECT_FALSE(eq("\\sqrt{10^{10}+1}", "10^5"));  // differ by 5e-11 relative, above rel_tol 1e-12
  auto loose = with([](auto& o) { o.compare.rel_tol = 1e-3; });
  EXPECT_TRUE(eq("\\pi", "\\frac{355}{113}", loose));
  EXPECT_FALSE(eq("\\pi", "\\frac{355}{113}"));
}

TEST(MathCompare, Percent) {
  EXPECT_TRUE(eq("50\\%", "50"));
  EXPECT_TRUE(eq("50\\%", "0.5"));
  EXPECT_TRUE(eq("0.5", "50\\%"));
  EXPECT_FALSE(eq("0.5", "50"));
  EXPECT_FALSE(eq("50\\%", "0.5\\%"));
  auto strict_pct = with([](auto& o) { o.compare.allow_percent = false; });
  EXPECT_FALSE(eq("50\\%", "50", strict_pct));
  EXPECT_TRUE(eq("50\\%", "0.5", strict_pct));  // % is then just /100
}

TEST(MathCompare, StrictVariables) {
  EXPECT_FALSE(eq("f(x)", "f(y)"));
  EXPECT_FALSE(eq("x^2+1", "t^2+1"));
  auto loose = with([](auto& o) { o.compare.strict = false; });
  EXPECT_TRUE(eq("f(x)", "f(y)", loose));
  EXPECT_TRUE(eq("x^2+1", "t^2+1", loose));
  EXPECT_FALSE(eq("x^2+1", "t^2-1", loose));
}

TEST(MathCompare, SetRelationAsymmetry) {
  EXPECT_TRUE(eq("-2 \\le x \\le 7", "[-2,7]"));
  EXPECT_FALSE(eq("[-2,7]", "-2 \\le x \\le 7"));
  auto allow = with([](auto& o) { o.compare.allow_set_relation_comp = true; });
  EXPECT_TRUE(eq("[-2,7]", "-2 \\le x \\le 7", allow));
  EXPECT_FALSE(eq("[-2,7]", "-2 < x \\le 7", allow));
  EXPECT_TRUE(eq("1\\leq|z|\\leq \\frac{3}{2}", "z \\in [-\\frac{3}{2}, -1] \\cup [1, \\frac{3}{2}]"));
  EXPECT_FALSE(eq("1\\leq|z|\\leq \\frac{3}{2}", "[1, \\frac{3}{2}]"));
}

TEST(MathCompare, EquationsAndInequalities) {
  EXPECT_TRUE(eq("y = 2x+1", "2x - y + 1 = 0"));
  EXPECT_TRUE(eq("34x+45y-20z+100=0", "-34x-45y+20z-100=0"));
  EXPECT_FALSE(eq("y = 2x+1", "y = 2x"));
  EXPECT_TRUE(eq("x \\le 5", "5 \\geq x"));
  EXPECT_TRUE(eq("x < 1", "-x > -1"));
  EXPECT_FALSE(eq("x < 1", "-x < -1"));
  EXPECT_TRUE(eq("x^2 + y^2 = 4", "y^2 = 4 - x^2"));
  EXPECT_FALSE(eq("x > 5", "x \\ge 5"));
  EXPECT_TRUE(eq("1 < x < 3", "3 > x > 1"));  // chains are read left to right after flipping
}

TEST(MathCompare, AssignmentsAndChains) {
  EXPECT_TRUE(eq("x = 11", "x = 5+5+1 = 7 = 11"));
  EXPECT_TRUE(eq("11", "x \\approx 11"));
  EXPECT_FALSE(eq("a + 3z = 0", "0"));  // an equation is not an assignment
  EXPECT_FALSE(eq("7 = 11a+c", "11a+c"));
  EXPECT_TRUE(eq("(p,q)=(3,2)", "(3,2)"));
  EXPECT_TRUE(eq("a=4, -8, -10", "-10, -8, 4"));
  EXPECT_FALSE(eq("n=2, 3, 4", "n=1, 2, 3"));
  EXPECT_TRUE(eq("\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", "\\frac{\\sqrt6}{6}"));
}

TEST(MathCompare, DomainsOfVariableExpressions) {
  EXPECT_TRUE(eq("\\sqrt{x^2}", "|x|"));
  EXPECT_FALSE(eq("\\sqrt{x^2}", "x"));
  EXPECT_TRUE(eq("\\frac{1}{3\\sqrt[3]{x}^2}", "\\frac{1}{3x^{2/3}}"));
  EXPECT_TRUE(eq("\\ln(x^2)", "2\\ln|x|"));
  EXPECT_TRUE(eq("\\frac{x^2-1}{x-1}", "x+1"));
  EXPECT_FALSE(eq("\\frac{1}{x}", "x"));
}

TEST(MathCompare, SetsTuplesIntervals) {
  EXPECT_TRUE(eq("\\{1,2\\}", "\\{2,1\\}"));
  EXPECT_FALSE(eq("(1,2)", "(2,1)"));
  EXPECT_FALSE(eq("(1,2)", "[1,2]"));
  EXPECT_TRUE(eq("(1,3)", "{1,3}"));  // a bare list against a tuple compares in order
  EXPECT_FALSE(eq("(3,1)", "{1,3}"));
  EXPECT_TRUE(eq("(-\\infty, 1) \\cup (1, \\infty)", "(1,\\infty)\\cup(-\\infty,1)"));
  EXPECT_TRUE(eq("[0,2]", "[0,1]\\cup(1,2]"));
  EXPECT_FALSE(eq("[0,2]", "[0,1)\\cup(1,2]"));
  EXPECT_TRUE(eq("[0,2]", "[0,1)\\cup\\{1\\}\\cup(1,2]"));
  EXPECT_TRUE(eq("(a, b]", "(a,b]"));  // symbolic endpoints
  EXPECT_FALSE(eq("(a, b]", "[a,b]"));
}

TEST(MathCompare, RatiosTextAndComplex) {
  EXPECT_TRUE(eq("7:32", "7:32"));
  EXPECT_TRUE(eq("2:4", "1:2"));
  EXPECT_FALSE(eq("12:00", "1:00"));
  EXPECT_TRUE(eq("\\text{Even}", "Even"));
  EXPECT_FALSE(eq("d", "\\text{E}"));
  EXPECT_TRUE(eq("3+4i", "(2+i)^2"));
  EXPECT_FALSE(eq("3+4i", "(2-i)^2"));
}

TEST(MathCompare, HugeValuesDoNotHang) {
  EXPECT_FALSE(eq("5", "2^{10^{10}}"));
  EXPECT_TRUE(eq("2^{10^{10}}", "2^{10^{10}}"));
  EXPECT_TRUE(eq("(x+1)^{1000}", "(1+x)^{1000}"));
  EXPECT_FALSE(eq("(x+1)^{1000}", "(x+1)^{999}"));
  EXPECT_FALSE(eq("5", "100000!"));
  EXPECT_FALSE(eq("10^{100}", "10^{100}+1"));
  EXPECT_TRUE(eq("123456789012345678901234567890123456789012345678901234567890",
                 "123456789012345678901234567890123456789012345678901234567890"));
  EXPECT_FALSE(eq("123456789012345678901234567890123456789012345678901234567890",
                  "123456789012345678901234567890123456789012345678901234567891"));
}

}  // namespace
}  // namespace grpo::reward::math
