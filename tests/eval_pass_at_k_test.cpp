// eval/eval.h: pass@k against hand-computed binomial ratios, maj@k's vote and tie rule, and
// the summary's averages.
#include "eval/eval.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace grpo {
namespace {

EvalSample sample(bool correct, const std::string& extracted, int64_t tokens = 10) {
  EvalSample s;
  s.correct = correct;
  s.extracted = extracted;
  s.tokens = tokens;
  s.reward = correct ? 1.0 : 0.0;
  return s;
}

TEST(EvalMetrics, PassAtKMatchesTheBinomialRatio) {
  // 1 − C(n−c, k) / C(n, k), worked out by hand.
  EXPECT_DOUBLE_EQ(pass_at_k(5, 2, 2), 1.0 - 3.0 / 10.0);     // C(3,2)=3, C(5,2)=10
  EXPECT_DOUBLE_EQ(pass_at_k(10, 3, 5), 1.0 - 21.0 / 252.0);  // C(7,5)=21, C(10,5)=252
  EXPECT_NEAR(pass_at_k(100, 1, 10), 0.1, 1e-12);             // C(99,10)/C(100,10) = 90/100
  EXPECT_DOUBLE_EQ(pass_at_k(3, 1, 1), 1.0 / 3.0);            // pass@1 = c/n
  EXPECT_DOUBLE_EQ(pass_at_k(8, 5, 1), 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 4, 1), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 4), 1.0);  // n − c < k: every subset holds the correct one
  EXPECT_DOUBLE_EQ(pass_at_k(4, 2, 3), 1.0);
  EXPECT_THROW(pass_at_k(4, 1, 5), InputError);
  EXPECT_THROW(pass_at_k(4, 1, 0), InputError);
  EXPECT_THROW(pass_at_k(4, 5, 1), InputError);
  EXPECT_THROW(pass_at_k(0, 0, 1), InputError);
}

TEST(EvalMetrics, MajorityVoteAndTieRule) {
  // "7" twice (wrong), "5" once (right): the majority is wrong.
  std::vector<EvalSample> s = {sample(false, "7"), sample(true, "5"), sample(false, " 7 ")};
  EXPECT_FALSE(majority_correct(s, 3));
  // Over the first two: a 1-1 tie; the answer seen first ("7") wins.
  EXPECT_FALSE(majority_correct(s, 2));
  EXPECT_FALSE(majority_correct(s, 1));
  std::vector<EvalSample> t = {sample(true, "5"), sample(false, "7"), sample(false, ""), sample(false, "")};
  EXPECT_TRUE(majority_correct(t, 2));  // tie, "5" first
  EXPECT_TRUE(majority_correct(t, 4));  // samples without an answer do not vote
  std::vector<EvalSample> none = {sample(false, ""), sample(false, "  ")};
  EXPECT_FALSE(majority_correct(none, 2));
  EXPECT_THROW(majority_correct(none, 3), InputError);
}

TEST(EvalMetrics, SummaryAveragesOverPromptsAndSamples) {
  std::vector<std::vector<EvalSample>> p(2);
  p[0] = {sample(true, "1", 4), sample(false, "2", 6), sample(true, "1", 8), sample(false, "", 10)};
  p[1] = {sample(false, "3", 20), sample(false, "3", 20), sample(false, "4", 20), sample(false, "4", 20)};
  p[0][3].truncated = true;
  p[0][0].format_ok = p[0][1].format_ok = p[1][0].format_ok = true;
  EvalSummary s = summarize_eval(p, {1, 2, 4});
  EXPECT_EQ(s.prompts, 2);
  EXPECT_EQ(s.samples, 8);
  EXPECT_DOUBLE_EQ(s.pass1, 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.pass_at[1], (0.5 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(s.pass_at[2], (1.0 - 1.0 / 6.0) / 2);  // prompt 0: 1 − C(2,2)/C(4,2)
  EXPECT_DOUBLE_EQ(s.pass_at[4], 0.5);
  EXPECT_DOUBLE_EQ(s.maj_at[1], 0.5);  // prompt 0's first answer "1" is right
  EXPECT_DOUBLE_EQ(s.maj_at[2], 0.5);  // "1" vs "2" tie -> "1"
  EXPECT_DOUBLE_EQ(s.maj_at[4], 0.5);  // "1" twice
  EXPECT_DOUBLE_EQ(s.mean_tokens, (4 + 6 + 8 + 10 + 80) / 8.0);
  EXPECT_DOUBLE_EQ(s.mean_reward, 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.format_rate, 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.answer_rate, 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.truncated_rate, 1.0 / 8.0);
  EXPECT_THROW(summarize_eval(p, {5}), InputError);
  EXPECT_THROW(summarize_eval({}, {1}), InputError);
  EXPECT_THROW(summarize_eval({{}}, {1}), InputError);
}

}  // namespace
}  // namespace grpo
