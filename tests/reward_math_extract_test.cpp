// Final-answer extraction: \boxed{}, <answer>, "the answer is", math environments, numbers,
// think blocks and multiple-choice letters.
#include <gtest/gtest.h>

#include "reward/math/extract.h"

namespace grpo::reward::math {
namespace {

std::string extract(const std::string& text, ExtractOptions o = {}) {
  auto r = extract_answer(text, o);
  return r.answer ? r.answer->text() : "<none>";
}

std::string method(const std::string& text) {
  auto r = extract_answer(text, ExtractOptions{});
  return r.answer ? r.answer->method : "<none>";
}

TEST(MathExtract, BoxedWithNestedBracesAndVariants) {
  EXPECT_EQ(extract("so $\\boxed{\\frac{\\sqrt{3}}{2}}$."), "\\frac{\\sqrt{3}}{2}");
  EXPECT_EQ(extract("first \\boxed{1}, later \\boxed{2}. Done"), "2");
  EXPECT_EQ(extract("\\boxed 5"), "5");
  EXPECT_EQ(extract("\\fbox{7}"), "7");
  EXPECT_EQ(extract("\\boxed{\\{1\\}}"), "\\{1\\}");  // escaped braces do not count
  EXPECT_EQ(extract("\\boxed{\\boxed{3}}"), "3");
  EXPECT_EQ(extract("\\boxed{12 $ and $13 }. $"), "12 $ and $13 ");
  EXPECT_EQ(method("\\boxed{4}"), "boxed");
}

TEST(MathExtract, NeighbouringBoxesJoinOnlyAcrossConnectors) {
  auto r = extract_answer("\\boxed{1} and \\boxed{2}", ExtractOptions{});
  ASSERT_TRUE(r.answer);
  EXPECT_EQ(r.answer->parts, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(extract("\\boxed{(1, 2)}, \\boxed{(2, 1)}"), "(1, 2), (2, 1)");
  EXPECT_EQ(extract("\\boxed{3} \\text{ for part (a) and } \\boxed{5}"), "3, 5");
  EXPECT_EQ(extract("\\boxed{1} no no no \\boxed{2}"), "2");
  EXPECT_EQ(extract("\\boxed{12}, no wait, actually \\boxed{13}"), "13");
  EXPECT_EQ(extract("\\boxed{5}. Then \\boxed{10}."), "10");
}

TEST(MathExtract, ThinkBlocks) {
  EXPECT_EQ(final_section("<think>\\boxed{5}</think> so \\boxed{4}").value(), " so \\boxed{4}");
  EXPECT_FALSE(final_section("<think> \\boxed{5} and no end").has_value());
  EXPECT_EQ(final_section("no think block \\boxed{3}").value(), "no think block \\boxed{3}");
  EXPECT_EQ(final_section("prompt ended with <think>; ... </think> \\boxed{2}").value(), " \\boxed{2}");
  // An answer inside the think block is not the final one.
  auto s = final_section("<think>the answer is \\boxed{5}</think> I could not finish.");
  ASSERT_TRUE(s);
  EXPECT_EQ(extract(std::string(*s)), "<none>");
}

TEST(MathExtract, AnswerTagAndPhrases) {
  EXPECT_EQ(extract("<answer> 42 </answer>"), "42");
  EXPECT_EQ(method("<answer> 42 </answer>"), "answer_tag");
  EXPECT_EQ(extract("<answer>x = \\boxed{3}</answer>"), "3");
  EXPECT_EQ(extract("<answer>unclosed 42"), "42");  // falls through to the last number
  EXPECT_EQ(extract("Thus the answer is 2 or -5.\nDone"), "2 or -5");
  EXPECT_EQ(extract("Final answer: $\\frac{1}{2}$"), "\\frac{1}{2}");
  EXPECT_EQ(extract("Final Answer: The final answer is $28 \\%$. I hope it is correct."), "28 \\%");
  EXPECT_EQ(extract("Final Answer: The largest $n$ is 34."), "34");
  // "The final answer is" after a box overrides it (same tier, later in the text).
  EXPECT_EQ(extract("\\boxed{200} ... Final Answer: The final answer is $10,455$. I hope it is correct."), "10,455");
  // Words after "answer" do not override a box.
  EXPECT_EQ(extract("\\boxed{7} is the answer: nice problem"), "7");
}

TEST(MathExtract, MathEnvironmentsAndNumbers) {
  EXPECT_EQ(extract("We get $x = 3$."), "x = 3");
  EXPECT_EQ(extract("Answer $$ \n 9 \n $$"), " \n 9 \n ");
  EXPECT_EQ(extract("Answer $ \n 9 \n $", ExtractOptions{{ExtractMethod::LastLatex}, 2000}), "<none>");
  EXPECT_EQ(extract("Answer \\( 9 \\)"), " 9 ");
  EXPECT_EQ(extract("Answer \\[ 9 \\]"), " 9 ");
  EXPECT_EQ(extract("$1$ and $2$ and $3$"), "1, 2, 3");
  EXPECT_EQ(extract("the price is \\$5 or $28$ %"), "28%");
  EXPECT_EQ(extract("it is 1,000.99\u20ac"), "1,000.99");
  EXPECT_EQ(extract("Soucis : 2,74 $ a.."), "2,74");
  EXPECT_EQ(extract("so -10/9 it is"), "-10/9");
  EXPECT_EQ(extract("then 28 percent"), "28%");
  EXPECT_EQ(extract("AZYUK2A"), "<none>");
  EXPECT_EQ(extract("no numbers here"), "<none>");
  // The last environment and the last number compete by position.
  EXPECT_EQ(extract("Let $d = 90/n$. There are 12 sequences."), "12");
}

TEST(MathExtract, OrderIsConfigurable) {
  ExtractOptions boxed_only{{ExtractMethod::Boxed}, 2000};
  EXPECT_EQ(extract("The answer is 5.", boxed_only), "<none>");
  EXPECT_EQ(extract("\\boxed{5}", boxed_only), "5");
  ExtractOptions numbers_first{{ExtractMethod::LastNumber, ExtractMethod::Boxed}, 2000};
  EXPECT_EQ(extract("\\boxed{5} then 6", numbers_first), "6");
}

TEST(MathExtract, OversizedAnswersAreFlagged) {
  ExtractOptions o{{ExtractMethod::Boxed}, 10};
  auto r = extract_answer("\\boxed{123456789012345}", o);
  ASSERT_TRUE(r.answer);
  EXPECT_TRUE(r.oversized);
  EXPECT_FALSE(extract_answer("\\boxed{12}", o).oversized);
}

TEST(MathExtract, ReferenceIsWholeUnlessItIsASolution) {
  ExtractOptions o;
  EXPECT_EQ(extract_reference("\\frac{1}{2}", o).method, "whole");
  EXPECT_EQ(extract_reference("x + 1", o).text(), "x + 1");
  EXPECT_EQ(extract_reference("so the total is $\\boxed{14}$.", o).text(), "14");
  EXPECT_EQ(extract_reference("$[0,1)$", o).text(), "[0,1)");
  EXPECT_EQ(extract_reference("1,22", o).text(), "1,22");  // no last-number guessing on references
}

TEST(MathExtract, LinearOnPathologicalInput) {
  std::string many_open(200000, ' ');
  for (size_t i = 0; i < many_open.size(); i += 8) many_open.replace(i, 7, "\\boxed{");
  many_open += "7";
  EXPECT_EQ(extract(many_open), " 7");  // the last, unclosed box
  std::string dollars;
  for (int i = 0; i < 100000; ++i) dollars += "$ \\( \\[ x ";
  EXPECT_NO_THROW(extract(dollars));
}

TEST(MathExtract, ChoiceLetters) {
  EXPECT_EQ(extract_choice("The answer is (B).", "ABCD"), 'B');
  EXPECT_EQ(extract_choice("answer: \\boxed{C}", "ABCD"), 'C');
  EXPECT_EQ(extract_choice("A. Because B is not valid", "ABCD"), 'A');
  EXPECT_EQ(extract_choice("Because B is valid", "ABCD"), 'B');
  EXPECT_FALSE(extract_choice("No valid answer here", "ABCD").has_value());
  EXPECT_FALSE(extract_choice("AB testing", "ABCD").has_value());
}

}  // namespace
}  // namespace grpo::reward::math
