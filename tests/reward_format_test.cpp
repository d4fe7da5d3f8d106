// Shaping rewards (R1 format, language consistency, DAPO overlong), UTF-8 handling, scoring rules
// and composites, against hand-computed values.
#include <gtest/gtest.h>

#include "file_testutil.h"
#include "reward/composite.h"
#include "reward/format.h"
#include "reward/registry.h"
#include "reward/scoring.h"

using namespace grpo::reward;
using grpo::InputError;

namespace {

using ::grpo::ckpt_test::error_of;

VerifyRequest request(std::string completion, nlohmann::json options = nullptr, nlohmann::json reference = nullptr) {
  VerifyRequest r;
  r.completion = std::move(completion);
  r.options = std::move(options);
  r.reference = std::move(reference);
  return r;
}

// The answer after the last </think> equals the reference string.
class ExactVerifier : public Verifier {
 public:
  std::string name() const override { return "exact"; }
  std::string description() const override { return "answer == reference"; }
  VerifyResult verify(const VerifyRequest& r) const override {
    auto pos = r.completion.rfind("</think>");
    std::string answer = pos == std::string::npos ? r.completion : r.completion.substr(pos + 8);
    while (!answer.empty() && answer.front() == ' ') answer.erase(0, 1);
    VerifyResult out;
    out.correct = answer == r.reference.get<std::string>();
    out.reward = out.correct ? 1.0 : 0.0;
    out.components["accuracy"] = out.reward;
    out.extracted = answer;
    out.reason = out.correct ? "equal" : "different";
    return out;
  }
};

}  // namespace

TEST(R1Format, WellFormedCompletions) {
  R1Format f = check_r1_format("<think>2+2 is 4</think>The answer is 4.");
  EXPECT_TRUE(f.ok) << f.reason;
  EXPECT_EQ(f.reasoning, "2+2 is 4");
  EXPECT_EQ(f.answer, "The answer is 4.");

  R1FormatOptions tags;
  tags.answer_tags = true;
  f = check_r1_format("  \n<think>x</think>\n<answer> 4 </answer>\n", tags);
  EXPECT_TRUE(f.ok) << f.reason;
  EXPECT_EQ(f.answer, "4");

  // Without answer_tags, tags around the answer are still removed from the extracted answer.
  EXPECT_EQ(check_r1_format("<think>x</think><answer>4</answer>").answer, "4");

  R1FormatOptions opened;
  opened.prompt_opens_think = true;
  f = check_r1_format("reasoning here</think> 4", opened);
  EXPECT_TRUE(f.ok) << f.reason;
  EXPECT_EQ(f.reasoning, "reasoning here");
}

TEST(R1Format, BrokenRulesAreNamed) {
  R1FormatOptions tags;
  tags.answer_tags = true;
  EXPECT_EQ(check_r1_format("<think>x</think> 4", tags).reason, "no <answer>…</answer> after </think>");
  EXPECT_EQ(check_r1_format("<think>x</think><answer>4</answer> extra", tags).reason,
            "the text after </think> is not exactly one <answer>…</answer> block");
  EXPECT_EQ(check_r1_format("<think>x</think>  \n").reason, "empty answer after </think>");
  EXPECT_EQ(check_r1_format("<think>x</think><answer> </answer>").reason, "empty answer after </think>");
  EXPECT_EQ(check_r1_format("The answer <think>x</think> 4").reason, "does not start with <think>");
  EXPECT_EQ(check_r1_format("<think>never closed").reason, "no closing </think>");
  EXPECT_EQ(check_r1_format("<think>a</think><think>b</think> 4").reason,
            "2 <think> tags (exactly one think block expected)");
  EXPECT_EQ(check_r1_format("<think>a</think> b </think> 4").reason,
            "2 </think> tags (exactly one think block expected)");
  R1FormatOptions opened;
  opened.prompt_opens_think = true;
  EXPECT_EQ(check_r1_format("<think>x</think> 4", opened).reason,
            "<think> inside the completion (the prompt opened it)");
  EXPECT_FALSE(check_r1_format("").ok);
}

TEST(R1Format, SeveralThinkBlocksWhenAllowed) {
  R1FormatOptions many;
  many.single_think = false;
  R1Format f = check_r1_format("<think>a</think> partial <think>b</think> 4", many);
  EXPECT_TRUE(f.ok) << f.reason;
  EXPECT_EQ(f.reasoning, "a");
  EXPECT_EQ(f.answer, "4");
  EXPECT_EQ(check_r1_format("<think>a</think> mid </think> 4", many).reason, "</think> without a matching <think>");
  EXPECT_EQ(check_r1_format("<think>a</think> <think>b", many).reason, "a later <think> is never closed");
  EXPECT_EQ(check_r1_format("<think>a <think> b</think> 4", many).reason, "nested <think> in the reasoning");
}

TEST(LanguageShare, WordsAndLettersByScript) {
  // The answer, is, The: 3 Latin words of 3.
  auto s = language_share("The answer is 42.", "en", LanguageUnit::words);
  EXPECT_EQ(s.target, 3);
  EXPECT_EQ(s.total, 3);
  EXPECT_DOUBLE_EQ(s.share(), 1.0);
  // 我 们 和: three Han words (one per character); compute, the: two Latin words.
  s = language_share("我们 compute the 和", "en", LanguageUnit::words);
  EXPECT_EQ(s.target, 2);
  EXPECT_EQ(s.total, 5);
  EXPECT_DOUBLE_EQ(s.share(), 0.4);
  EXPECT_DOUBLE_EQ(language_share("我们 compute the 和", "zh", LanguageUnit::words).share(), 0.6);
  // Letters: a, b Latin; 中 Han.
  EXPECT_DOUBLE_EQ(language_share("ab中", "en", LanguageUnit::letters).share(), 2.0 / 3.0);
  // Cyrillic: 1 of 2 words; 5 Latin of 11 letters.
  EXPECT_DOUBLE_EQ(language_share("Привет world", "en", LanguageUnit::words).share(), 0.5);
  EXPECT_DOUBLE_EQ(language_share("Привет world", "en", LanguageUnit::letters).share(), 5.0 / 11.0);
  EXPECT_DOUBLE_EQ(language_share("Привет world", "ru", LanguageUnit::words).share(), 0.5);
  // A combining accent stays inside its word; digits split words.
  EXPECT_EQ(language_share("cafe\xCC\x81", "en", LanguageUnit::words).total, 1);
  EXPECT_EQ(language_share("cafe\xCC\x81", "en", LanguageUnit::letters).total, 4);
  EXPECT_EQ(language_share("x2y", "en", LanguageUnit::words).total, 2);
  // Japanese counts kana and kanji: こ れ は (3) of 4 words.
  EXPECT_DOUBLE_EQ(language_share("これは test", "ja", LanguageUnit::words).share(), 0.75);
  // No letters: share 0.
  s = language_share("1 + 1 = 2", "en", LanguageUnit::words);
  EXPECT_EQ(s.total, 0);
  EXPECT_DOUBLE_EQ(s.share(), 0.0);
  EXPECT_NE(error_of([] { language_share("x", "klingon", LanguageUnit::words); }).find("'klingon' is not known"),
            std::string::npos);
}

TEST(LanguageVerifier, LooksAtTheReasoningOnly) {
  auto v = make_language_verifier({{"target", "en"}});
  VerifyResult r = v->verify(request("<think>We add 我们</think> 答案是 4"));
  // Reasoning "We add 我们": We, add (Latin) + 我, 们 (Han) -> 2/4.
  EXPECT_DOUBLE_EQ(r.reward, 0.5);
  EXPECT_DOUBLE_EQ(r.components.at("language"), 0.5);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reason, "2/4 words in en");
  // scope all: + 答 案 是 -> 2/7.
  r = v->verify(request("<think>We add 我们</think> 答案是 4", {{"scope", "all"}}));
  EXPECT_DOUBLE_EQ(r.reward, 2.0 / 7.0);
  r = v->verify(request("<think>all english here</think> 4"));
  EXPECT_TRUE(r.correct);
  EXPECT_DOUBLE_EQ(r.reward, 1.0);
  EXPECT_NE(error_of([&] { v->verify(request("x", {{"unit", "bytes"}})); }).find("option 'unit'"), std::string::npos);
  EXPECT_NE(error_of([] {
              make_language_verifier({{"target", "xx"}});
            }).find("verifier 'language': option 'target'"),
            std::string::npos);
}

TEST(OverlongPenalty, DapoSoftPenalty) {
  // L_max 4096, L_cache 512: free up to 3584, then linear to -1 at 4096.
  EXPECT_DOUBLE_EQ(overlong_penalty(100, 4096, 512), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(3584, 4096, 512), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(3585, 4096, 512), -1.0 / 512.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(3840, 4096, 512), -0.5);
  EXPECT_DOUBLE_EQ(overlong_penalty(4096, 4096, 512), -1.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(4097, 4096, 512), -1.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(10, 10, 10), -1.0);  // cache = max_len: the ramp starts at 0
  EXPECT_DOUBLE_EQ(overlong_penalty(5, 10, 10), -0.5);
  EXPECT_THROW(overlong_penalty(1, 10, 0), InputError);
  EXPECT_THROW(overlong_penalty(1, 10, 11), InputError);
}

TEST(OverlongVerifier, LengthInTokensElseWords) {
  auto v = make_overlong_verifier({{"max_len", 4}, {"cache", 2}});
  VerifyRequest r = request("a b c d e");  // 5 words > 4
  EXPECT_DOUBLE_EQ(v->verify(r).reward, -1.0);
  r.completion_tokens = 3;  // (2 - 3) / 2
  VerifyResult out = v->verify(r);
  EXPECT_DOUBLE_EQ(out.reward, -0.5);
  EXPECT_DOUBLE_EQ(out.components.at("overlong"), -0.5);
  EXPECT_FALSE(out.correct);
  EXPECT_EQ(out.reason, "length 3 tokens, free up to 2, max 4: -0.5");
  r.options = {{"length_unit", "words"}};
  EXPECT_DOUBLE_EQ(v->verify(r).reward, -1.0);
  r.options = {{"length_unit", "chars"}, {"max_len", 12}, {"cache", 4}};  // 9 chars: (8 - 9) / 4
  EXPECT_DOUBLE_EQ(v->verify(r).reward, -0.25);
  auto tokens = make_overlong_verifier({{"max_len", 4}, {"cache", 2}, {"length_unit", "tokens"}});
  EXPECT_NE(error_of([&] { tokens->verify(request("a")); }).find("needs the request's completion_tokens"),
            std::string::npos);
  EXPECT_EQ(error_of([] {
              make_overlong_verifier({{"max_len", 4}});
            }),
            "verifier 'overlong': option 'cache': required together with max_len");
  auto unset = make_overlong_verifier(nullptr);
  EXPECT_NE(error_of([&] { unset->verify(request("a")); }).find("max_len and cache are not set"), std::string::npos);
  EXPECT_DOUBLE_EQ(unset->verify(request("a b c", {{"max_len", 2}, {"cache", 1}})).reward, -1.0);
  EXPECT_NE(error_of([] {
              make_overlong_verifier({{"max_len", 4}, {"cache", 5}});
            }).find("must be in (0, max_len=4]"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              make_overlong_verifier({{"max_len", "big"}, {"cache", 1}});
            }).find("option 'max_len': expected an integer, got \"big\""),
            std::string::npos);
}

TEST(FormatVerifier, RequestOptionsOverrideDefaults) {
  auto v = make_format_verifier(nlohmann::json::object());
  VerifyResult r = v->verify(request("<think>x</think> 4"));
  EXPECT_DOUBLE_EQ(r.reward, 1.0);
  EXPECT_TRUE(r.correct);
  EXPECT_EQ(r.components, (std::map<std::string, double>{{"format", 1.0}}));
  EXPECT_EQ(r.extracted, "4");
  r = v->verify(request("<think>x</think> 4", {{"answer_tags", true}}));
  EXPECT_DOUBLE_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "no <answer>…</answer> after </think>");
  EXPECT_EQ(error_of([&] {
              v->verify(request("x", {{"answer_tag", true}}));
            }),
            "verifier 'format': option 'answer_tag': unknown option (expected one of: answer_tags, "
            "prompt_opens_think, single_think)");
  EXPECT_EQ(error_of([&] {
              v->verify(request("x", {{"answer_tags", "yes"}}));
            }),
            "verifier 'format': option 'answer_tags': expected true or false, got \"yes\"");
  EXPECT_NE(error_of([&] { v->verify(request("x", nlohmann::json::array())); }).find("must be a JSON object"),
            std::string::npos);
  // Defaults from config apply when the request has no options.
  auto strict = make_format_verifier({{"answer_tags", true}});
  EXPECT_DOUBLE_EQ(strict->verify(request("<think>x</think> 4")).reward, 0.0);
  EXPECT_DOUBLE_EQ(strict->verify(request("<think>x</think> <answer>4</answer>")).reward, 1.0);
}

TEST(Scoring, LengthLimitAndWeights) {
  auto v = make_format_verifier(nullptr);
  VerifyRequest r = request("<think>x</think> 4");
  r.limits.max_completion_bytes = 10;  // the completion has 18 bytes
  VerifyResult out = score(*v, r);
  EXPECT_DOUBLE_EQ(out.reward, 0.0);
  EXPECT_EQ(out.reason, "completion too long: 18 bytes > limit 10");
  EXPECT_TRUE(out.components.empty());
  r.limits.max_completion_bytes = 18;
  EXPECT_DOUBLE_EQ(score(*v, r).reward, 1.0);
  EXPECT_DOUBLE_EQ(score(*v, r, {{"format", 2.5}}).reward, 2.5);
  EXPECT_EQ(error_of([&] {
              score(*v, r, {{"accuracy", 1.0}});
            }),
            "weights: verifier 'format' has no component 'accuracy' (it has: format)");
}

class CompositeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    register_builtin(registry_);
    registry_.add(std::make_shared<ExactVerifier>(), "test");
  }
  VerifierRegistry registry_;
};

TEST_F(CompositeTest, SumsWeightedParts) {
  nlohmann::json spec = {{"accuracy", {{"verifier", "exact"}, {"weight", 1.0}}},
                         {"format", {{"weight", 0.1}}},
                         {"overlong", {{"max_len", 10}, {"cache", 4}, {"weight", 1.0}}}};
  auto r1 = make_composite_verifier("r1", spec, registry_);
  EXPECT_EQ(r1->description(), "composite: 1*accuracy(exact) + 0.1*format(format) + 1*overlong(overlong)");
  // 5 words (free up to 6): 1*1 + 0.1*1 + 1*0.
  VerifyRequest r = request("<think>so it is 4</think> 4", nullptr, "4");
  VerifyResult out = r1->verify(r);
  EXPECT_DOUBLE_EQ(out.reward, 1.1);
  EXPECT_TRUE(out.correct);
  EXPECT_EQ(out.extracted, "4");
  EXPECT_EQ(out.components, (std::map<std::string, double>{{"accuracy", 1.0}, {"format", 1.0}, {"overlong", 0.0}}));
  EXPECT_EQ(out.reason, "accuracy: equal; format: ok; overlong: length 5 words, free up to 6, max 10: 0");
  // 8 tokens: overlong (6 - 8) / 4 = -0.5 -> 1.1 - 0.5.
  r.completion_tokens = 8;
  EXPECT_DOUBLE_EQ(r1->verify(r).reward, 0.6);
  // Per-request part options: the format part now requires answer tags -> 1 + 0 - 0.5.
  r.options = {{"format", {{"answer_tags", true}}}};
  out = r1->verify(r);
  EXPECT_DOUBLE_EQ(out.reward, 0.5);
  EXPECT_TRUE(out.correct);  // the accuracy part decides
  // Request weights recombine the components: 2*1 + 0*0 + 1*(-0.5).
  r.options = nullptr;
  EXPECT_DOUBLE_EQ(score(*r1, r, {{"accuracy", 2.0}, {"overlong", 1.0}}).reward, 1.5);
  r.options = {{"lenght", {}}};
  EXPECT_EQ(error_of([&] { r1->verify(r); }), "composite 'r1': options name no part 'lenght'");
  // Wrong answer: correct follows accuracy even though the format is fine.
  out = r1->verify(request("<think>so</think> 5", nullptr, "4"));
  EXPECT_FALSE(out.correct);
  EXPECT_DOUBLE_EQ(out.reward, 0.1);
}

TEST_F(CompositeTest, WithoutAccuracyPartAllMustPass) {
  auto c = make_composite_verifier("shape", {{"format", nullptr}, {"language", {{"target", "en"}}}}, registry_);
  EXPECT_TRUE(c->verify(request("<think>plain words</think> 4")).correct);
  VerifyResult out = c->verify(request("<think>plain 中文</think> 4"));
  EXPECT_FALSE(out.correct);
  EXPECT_DOUBLE_EQ(out.reward, 1.0 + 1.0 / 3.0);
}

TEST_F(CompositeTest, SpecErrorsNameThePart) {
  EXPECT_EQ(error_of([&] {
              make_composite_verifier("r1", {{"accuracy", {{"verifier", "mth"}}}}, registry_);
            }),
            "r1.accuracy: unknown verifier 'mth' (registered: code, exact, format, language, math, overlong)");
  EXPECT_NE(error_of([&] {
              make_composite_verifier("r1", {{"overlong", {{"max_len", 10}, {"cache", 40}}}}, registry_);
            }).find("r1.overlong: verifier 'overlong': option 'cache'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              make_composite_verifier("r1", {{"accuracy", {{"verifier", "exact"}, {"strict", true}}}}, registry_);
            }).find("only for built-in verifiers"),
            std::string::npos);
  EXPECT_EQ(error_of([&] {
              make_composite_verifier("r1", {{"format", {{"weight", "high"}}}}, registry_);
            }),
            "r1.format.weight: expected a number");
  EXPECT_NE(
      error_of([&] { make_composite_verifier("r1", nlohmann::json::object(), registry_); }).find("expected a map"),
      std::string::npos);
}
