// The `math` Verifier: the contract of reward/verifier.h (reward, components, reason, extracted,
// request errors, options, limits, thread safety).
#include <gtest/gtest.h>

#include <thread>

#include "reward/math/math_verifier.h"

namespace grpo::reward {
namespace {

VerifyRequest request(const std::string& completion, nlohmann::json reference, nlohmann::json options = nullptr) {
  VerifyRequest r;
  r.completion = completion;
  r.reference = std::move(reference);
  r.options = std::move(options);
  return r;
}

TEST(MathVerifier, RewardComponentsReasonAndExtracted) {
  auto v = make_math_verifier(nullptr);
  EXPECT_EQ(v->name(), "math");
  EXPECT_FALSE(v->description().empty());

  VerifyResult ok = v->verify(request("so the answer is $\\boxed{\\frac12}$", "0.5"));
  EXPECT_TRUE(ok.correct);
  EXPECT_EQ(ok.reward, 1.0);
  EXPECT_EQ(ok.components.at("accuracy"), 1.0);
  EXPECT_EQ(ok.extracted, "\\frac12");
  EXPECT_EQ(ok.reason, "equal: 0.5 == \\frac12");

  VerifyResult bad = v->verify(request("\\boxed{0.52}", "1/2"));
  EXPECT_FALSE(bad.correct);
  EXPECT_EQ(bad.reward, 0.0);
  EXPECT_EQ(bad.components.at("accuracy"), 0.0);
  EXPECT_EQ(bad.reason, "not equal: 1/2 vs 0.52");

  VerifyResult none = v->verify(request("I do not know.", "3"));
  EXPECT_EQ(none.reward, 0.0);
  EXPECT_EQ(none.reason, "no answer found");
  EXPECT_EQ(none.extracted, "");

  VerifyResult think = v->verify(request("<think>maybe \\boxed{3}", "3"));
  EXPECT_EQ(think.reward, 0.0);
  EXPECT_EQ(think.reason, "no answer found: <think> is not closed");
}

TEST(MathVerifier, ReferenceForms) {
  auto v = make_math_verifier(nullptr);
  EXPECT_TRUE(v->verify(request("\\boxed{42}", "42")).correct);
  EXPECT_TRUE(v->verify(request("\\boxed{42}", {{"answer", "42"}})).correct);
  EXPECT_TRUE(v->verify(request("\\boxed{42}", {{"answer", 42}})).correct);
  EXPECT_TRUE(v->verify(request("\\boxed{27}", 27.0)).correct);  // AMC answers are numbers
  EXPECT_TRUE(v->verify(request("\\boxed{B}", {{"answer", "(B)"}, {"id", 7}})).correct);
}

TEST(MathVerifier, BadRequestsThrowInputErrorNamingTheField) {
  auto v = make_math_verifier(nullptr);
  auto message = [&](const VerifyRequest& r) {
    try {
      v->verify(r);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(request("\\boxed{1}", nullptr)).find("reference"), std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", {{"solution", "1"}})).find("\"answer\""), std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", {{"answer", true}})).find("\"answer\""), std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", "  ")).find("reference.answer is empty"), std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", "1", {{"float_rounding", "six"}})).find("options.float_rounding"),
            std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", "1", {{"extract", {"boxed", "magic"}}})).find("options.extract"),
            std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", "1", {{"tolerance", 0.1}})).find("unknown option options.tolerance"),
            std::string::npos);
  EXPECT_NE(message(request("\\boxed{1}", "1", 5)).find("options must be an object"), std::string::npos);
  EXPECT_THROW(make_math_verifier({{"max_depth", 0}}), InputError);
  EXPECT_THROW(make_math_verifier({{"rel_tol", 2}}), InputError);
}

TEST(MathVerifier, OptionsFromFactoryAndRequest) {
  auto boxed_only = make_math_verifier({{"extract", {"boxed"}}});
  EXPECT_FALSE(boxed_only->verify(request("The answer is 5.", "5")).correct);
  EXPECT_TRUE(boxed_only->verify(request("The answer is 5.", "5", {{"extract", {"answer_is"}}})).correct);

  auto v = make_math_verifier({{"float_rounding", 2}});
  EXPECT_TRUE(v->verify(request("\\boxed{0.33}", "1/3")).correct);
  EXPECT_FALSE(v->verify(request("\\boxed{0.33}", "1/3", {{"float_rounding", 6}})).correct);
  EXPECT_FALSE(v->verify(request("\\boxed{50}", "50\\%", {{"allow_percent", false}})).correct);
  EXPECT_TRUE(v->verify(request("\\boxed{f(y)}", "f(x)", {{"strict", false}})).correct);
  EXPECT_TRUE(v->verify(request("\\boxed{x \\le 2}", "(-\\infty, 2]", {{"allow_set_relation_comp", true}})).correct);
}

TEST(MathVerifier, LimitsAndBadCompletions) {
  auto v = make_math_verifier(nullptr);
  VerifyRequest big = request(std::string(2 << 20, 'x') + "\\boxed{1}", "1");
  VerifyResult r = v->verify(big);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason.rfind("too long: ", 0), 0u) << r.reason;

  // A 10 MB completion with the limit raised: still answered, linearly.
  VerifyRequest huge = request(std::string(10 << 20, 'a') + " the answer is \\boxed{7}", "7");
  huge.limits.max_completion_bytes = 16 << 20;
  EXPECT_TRUE(v->verify(huge).correct);

  EXPECT_TRUE(v->verify(request(std::string("\\boxed{5}\xff\xfe"), "5")).correct);  // invalid UTF-8
  EXPECT_FALSE(v->verify(request("\\boxed{\\frac{1}{2", "1/2")).correct);           // unbalanced braces

  VerifyRequest deep = request("\\boxed{" + std::string(10000, '(') + "1" + std::string(10000, ')') + "}", "1",
                               {{"max_answer_bytes", 100000}});
  VerifyResult d = v->verify(deep);
  EXPECT_EQ(d.reward, 0.0);
  EXPECT_NE(d.reason.find("nesting deeper than 100"), std::string::npos) << d.reason;

  VerifyResult long_answer = v->verify(request("\\boxed{" + std::string(5000, '1') + "}", "1"));
  EXPECT_EQ(long_answer.reward, 0.0);
  EXPECT_NE(long_answer.reason.find("answer too long"), std::string::npos);

  // (x+1)^20 against its expansion: exact polynomial arithmetic, far more than 1000 work units.
  std::string expanded;
  for (int k = 0; k <= 20; ++k) {
    int64_t c = 1;
    for (int j = 0; j < k; ++j) c = c * (20 - j) / (j + 1);
    expanded += (k ? "+" : "") + std::to_string(c) + "x^{" + std::to_string(k) + "}";
  }
  EXPECT_TRUE(v->verify(request("\\boxed{" + expanded + "}", "(x+1)^{20}")).correct);
  VerifyResult costly = v->verify(request("\\boxed{" + expanded + "}", "(x+1)^{20}", {{"max_work", 1000}}));
  EXPECT_EQ(costly.reward, 0.0);
  EXPECT_NE(costly.reason.find("too complex"), std::string::npos) << costly.reason;

  EXPECT_FALSE(v->verify(request("\\boxed{2^{10^{10}}}", "5")).correct);
  EXPECT_FALSE(v->verify(request("\\boxed{\\foo{3}\\bar}", "3")).correct);
}

TEST(MathVerifier, ThreadSafeAndDeterministic) {
  auto v = make_math_verifier(nullptr);
  std::vector<std::pair<std::string, std::string>> cases = {
      {"\\boxed{\\frac12}", "0.5"},        {"\\boxed{0.52}", "1/2"},
      {"\\boxed{(x+1)^2}", "x^2+2x+1"},    {"\\boxed{[1,2]}", "(1,2)"},
      {"\\boxed{\\{2,1\\}}", "\\{1,2\\}"}, {"\\boxed{3+4i}", "4i+3"},
      {"\\boxed{x \\geq 2}", "x \\ge 2"},  {"The answer is (C)", "C"}};
  std::vector<VerifyResult> expected;
  for (const auto& [c, g] : cases) expected.push_back(v->verify(request(c, g)));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (size_t i = 0; i < cases.size(); ++i) {
          VerifyResult r = v->verify(request(cases[i].first, cases[i].second));
          if (r.reward != expected[i].reward || r.reason != expected[i].reason) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace grpo::reward
