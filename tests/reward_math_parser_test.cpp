// Normalisation, lexing and parsing of answers into expression trees.
#include <gtest/gtest.h>

#include "reward/math/normalize.h"
#include "reward/math/parser.h"
#include "reward/math/simplify.h"

namespace grpo::reward::math {
namespace {

NodePtr parse(const std::string& s, bool plain = false, int max_depth = 100) {
  WorkBudget budget(1'000'000);
  ParseOptions o;
  o.plain = plain;
  o.max_depth = max_depth;
  return parse_answer(normalize_answer(s, plain), o, budget);
}

// Parsed and prepared (folded, sorted), rendered.
std::string canon(const std::string& s, bool plain = false) {
  WorkBudget budget(1'000'000);
  return to_string(*prepare(parse(s, plain), budget));
}

TEST(MathNormalize, LatexSpacingSizingAndFractions) {
  EXPECT_EQ(normalize_answer("\\left( \\dfrac{1}{2} \\right)", false), "( \\frac{1}{2} )");
  EXPECT_EQ(normalize_answer("a\\,b\\!c\\;d\\ e~f", false), "a bc d e f");
  EXPECT_EQ(normalize_answer("\\tfrac{3}{4}.", false), "\\frac{3}{4}");
  EXPECT_EQ(normalize_answer("\\$12", false), "12");
  EXPECT_EQ(normalize_answer("50\\%", false), "50%");
}

TEST(MathNormalize, ThousandsSeparators) {
  EXPECT_EQ(normalize_answer("1{,}000", false), "1000");
  EXPECT_EQ(normalize_answer("1,\\!000", false), "1000");
  EXPECT_EQ(normalize_answer("11,\\! 111,\\! 100", false), "11111100");
  EXPECT_EQ(normalize_answer("7,425,000", false), "7425000");
  EXPECT_EQ(normalize_answer("1,000.5", false), "1000.5");
  EXPECT_EQ(normalize_answer("(1, 200, 300)", false), "(1, 200, 300)");  // a list stays a list
  // Plain text: decimal comma and space separators as Math-Verify reads numbers.
  EXPECT_EQ(normalize_answer("1,22", true), "1.22");
  EXPECT_EQ(normalize_answer("1 000", true), "1000");
  EXPECT_EQ(normalize_answer("1,22", false), "1,22");
}

TEST(MathNormalize, UnitsDegreesAndUnicode) {
  EXPECT_EQ(normalize_answer("15\\text{ cm}^2", false), "15");
  EXPECT_EQ(normalize_answer("7 \\mbox{ meters}", false), "7");
  EXPECT_EQ(normalize_answer("\\text{Evelyn}", false), "\\text{Evelyn}");
  EXPECT_EQ(normalize_answer("90^\\circ", false), "90");
  EXPECT_EQ(normalize_answer("45^{\\circ}", false), "45");
  EXPECT_EQ(normalize_answer("12\\text{ and }13", false), "12 , 13");
  EXPECT_EQ(normalize_answer("\xe2\x88\x92"
                             "5",
                             false),
            "-5");                                                       // U+2212 minus
  EXPECT_EQ(normalize_answer("2 \xc3\x97 3", false), "2 \\times  3");    // U+00D7 times
  EXPECT_EQ(normalize_answer("\xcf\x80", false), "\\pi");                // U+03C0 pi
  EXPECT_EQ(normalize_answer("\\\\frac{1}{2}", false), "\\frac{1}{2}");  // JSON double escaping
}

TEST(MathParser, NumbersFractionsAndMixedNumbers) {
  EXPECT_EQ(canon("\\frac{1}{2}"), "1/2");
  EXPECT_EQ(canon("\\frac12"), "1/2");
  EXPECT_EQ(canon("\\frac3{3}"), "1");
  EXPECT_EQ(canon("2\\frac{1}{2}"), "5/2");
  EXPECT_EQ(canon("-1\\frac{1}{4}"), "-5/4");
  EXPECT_EQ(canon("2\\frac{x}{3}"), "(2/3)*x");  // not a mixed number
  EXPECT_EQ(canon("1.5e3"), "1500");
  EXPECT_EQ(canon("1.5\\times10^{3}"), "1500");
  EXPECT_EQ(canon("2^10"), "1024");
  EXPECT_EQ(canon("\\sqrt{16}"), "4");
  EXPECT_EQ(canon("204_5"), "204");
  NodePtr d = parse("0.5");
  EXPECT_TRUE(d->decimal);
  EXPECT_FALSE(parse("5")->decimal);
}

TEST(MathParser, FunctionsAndImplicitProducts) {
  EXPECT_EQ(canon("\\sin^2 x"), "sin(x)^2");
  EXPECT_EQ(canon("\\sin^{-1} x"), "arcsin(x)");
  EXPECT_EQ(canon("\\log_2 8"), "log(8, 2)");
  EXPECT_EQ(canon("\\sqrt[3]{x}"), "root(x, 3)");
  EXPECT_EQ(canon("xy"), "x*y");
  EXPECT_EQ(canon("f(1+x)"), "f(x+1)");  // sums are sorted: equal keys for opaque leaves
  EXPECT_TRUE(parse("f(x)")->undefined_function);
  EXPECT_EQ(canon("x(x+1)"), "x*(x+1)");
  EXPECT_EQ(canon("|x-1|"), "abs(x-1)");
  EXPECT_EQ(canon("\\lfloor 2.5 \\rfloor"), "floor(5/2)");
  EXPECT_EQ(canon("sqrt(2)", true), "2^(1/2)");
  EXPECT_EQ(canon("\\mathrm{e}"), "e");
  EXPECT_EQ(canon("\\pi r^2"), "pi*r^2");
}

TEST(MathParser, CollectionsIntervalsAndRelations) {
  EXPECT_EQ(parse("[0,1)")->kind, Kind::Interval);
  EXPECT_TRUE(parse("[0,1)")->left_closed);
  EXPECT_FALSE(parse("[0,1)")->right_closed);
  EXPECT_EQ(parse("(1,2)")->kind, Kind::Tuple);
  EXPECT_EQ(parse("\\{1,2\\}")->kind, Kind::Set);
  EXPECT_EQ(parse("1, 2 and 3")->args.size(), 3u);
  EXPECT_EQ(parse("2 or -5", true)->kind, Kind::List);
  EXPECT_EQ(parse("(1,2]\\cup[3,\\infty)")->kind, Kind::Union);
  NodePtr rel = parse("-2 \\le x < 7");
  ASSERT_EQ(rel->kind, Kind::Relation);
  EXPECT_EQ(rel->rel_ops, (std::vector<RelOp>{RelOp::Le, RelOp::Lt}));
  EXPECT_EQ(parse("x \\in [1,2]")->rel_ops[0], RelOp::In);
  EXPECT_EQ(parse("7:32")->kind, Kind::Ratio);
  EXPECT_EQ(canon("n = 1, 2, 3"), "n=1, 2, 3");  // distributed: n = {1, 2, 3}
  EXPECT_EQ(prepare(parse("n = 1, 2, 3"), *std::make_unique<WorkBudget>(10000))->kind, Kind::Relation);
  EXPECT_EQ(canon("1 \\pm \\sqrt{2}"), "2^(1/2)+1, -2^(1/2)+1");
  EXPECT_EQ(canon("x = \\frac{1}{3} \\approx 0.33"), "x=1/3");
}

TEST(MathParser, Matrices) {
  NodePtr m = parse("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}");
  ASSERT_EQ(m->kind, Kind::Matrix);
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 2);
  EXPECT_EQ(canon("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\\\ \\end{bmatrix}"), "[1, 2; 3, 4]");  // trailing \\ ignored
  EXPECT_EQ(canon("\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}\\begin{pmatrix}2\\\\3\\end{pmatrix}"), "[2; 3]");
  EXPECT_EQ(canon("\\left[\\begin{array}{cc}1 & 2\\end{array}\\right]"), "[1, 2]");
  EXPECT_THROW(parse("\\begin{pmatrix} 1 & 2 \\\\ 3 \\end{pmatrix}"), ParseError);  // ragged
}

TEST(MathParser, TextUnitsAndPercent) {
  EXPECT_EQ(parse("\\text{Evelyn}")->kind, Kind::Text);
  EXPECT_EQ(parse("\\text{Evelyn}")->name, "evelyn");
  EXPECT_EQ(canon("\\text{(C)}"), "\"c\"");
  EXPECT_EQ(canon("\\text{13}"), "13");
  EXPECT_EQ(canon("35 cm"), "35");
  EXPECT_EQ(canon("5 apples", true), "5");
  EXPECT_EQ(parse("28 percent", true)->kind, Kind::Percent);
  EXPECT_EQ(parse("28%")->kind, Kind::Percent);
}

TEST(MathParser, BadInputIsAParseErrorNotACrash) {
  EXPECT_THROW(parse("\\frac{1}{2"), ParseError);
  EXPECT_THROW(parse("(1, 2"), ParseError);
  EXPECT_THROW(parse("1 +"), ParseError);
  EXPECT_THROW(parse(""), ParseError);
  EXPECT_THROW(parse("\\end{pmatrix}"), ParseError);
  std::string deep = std::string(10000, '(') + "1" + std::string(10000, ')');
  try {
    parse(deep);
    FAIL() << "expected a depth error";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("nesting deeper than 100"), std::string::npos);
  }
  EXPECT_THROW(parse(std::string(10000, '-') + "1"), ParseError);
  EXPECT_THROW(parse("((((1))))", false, 3), ParseError);  // the limit is configurable
  EXPECT_NO_THROW(parse("((((1))))", false, 4));
  EXPECT_NO_THROW(parse(std::string(99, '(') + "1" + std::string(99, ')')));
  // Unknown commands are opaque symbols.
  EXPECT_EQ(canon("\\zzz + 1"), "\\zzz+1");
  EXPECT_EQ(canon("\\pix"), "pi*x");  // a known command glued to letters splits
}

TEST(MathParser, WorkBudgetBoundsTokenising) {
  WorkBudget small(50);
  ParseOptions o;
  EXPECT_THROW(parse_answer(std::string(200, '1') + std::string(200, '+'), o, small), BudgetExceeded);
}

}  // namespace
}  // namespace grpo::reward::math
