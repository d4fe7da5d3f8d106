// `grpo distill` (distill/distill.h): the filters as pure functions, the template helpers, the
// teacher's top-k log-probs against DeepseekModel::logprobs, harvest from a real experience store
// with known groups and injected corrupt records, and the CLI end to end on a tiny random model
// (real reward and rollout servers on loopback): dataset rows without answers, resume after
// kill -9 giving the uninterrupted run's export, --export-only with other filters, top-k, and an
// empty result.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "distill/distill.h"
#include "distill/export.h"
#include "distill/filters.h"
#include "model/pretrained.h"
#include "model_ckpt_testutil.h"
#include "model_test_util.h"
#include "store/experience_store.h"
#include "subprocess.h"
#include "tokenizer/chat_template.h"

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

namespace grpo {
namespace {

const std::string kTinyTemplate = std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/tiny-zero.yaml";

std::string read_file(const fs::path& p) { return ckpt_test::read_bytes(p.string()); }

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));  // throws if not JSON
  return out;
}

Completion completion(const std::string& text, std::vector<int32_t> ids, bool correct,
                      FinishReason finish = FinishReason::kStop) {
  Completion c;
  c.text = text;
  c.token_ids = std::move(ids);
  c.logprobs.assign(c.token_ids.size(), -1.0f);
  c.correct = correct;
  c.reward = correct ? 1.0 : 0.0;
  c.finish_reason = finish;
  return c;
}

// ---- filters ----------------------------------------------------------------------------

TEST(DistillFilters, RepeatedNgramFractionByHand) {
  EXPECT_DOUBLE_EQ(repeated_ngram_fraction({1, 2, 3, 4}, 2), 0.0);        // 3 bigrams, 3 distinct
  EXPECT_DOUBLE_EQ(repeated_ngram_fraction({1, 1, 1, 1, 1}, 2), 0.75);    // 4 bigrams, 1 distinct
  EXPECT_DOUBLE_EQ(repeated_ngram_fraction({1, 2, 1, 2, 1, 2}, 2), 0.6);  // 5 bigrams, 2 distinct
  EXPECT_DOUBLE_EQ(repeated_ngram_fraction({1, 2, 1, 2, 1, 2}, 3), 0.5);  // 4 trigrams, 2 distinct
  EXPECT_DOUBLE_EQ(repeated_ngram_fraction({7, 7, 7}, 1), 2.0 / 3.0);     // unigrams
  EXPECT_DOUBLE_EQ(repeated_ngram_fraction({1, 2}, 3), 0.0);              // shorter than n
  EXPECT_THROW(repeated_ngram_fraction({1, 2}, 0), InputError);
}

TEST(DistillFilters, DedupeKeyNormalisesCaseAndWhitespace) {
  EXPECT_EQ(dedupe_key("  Hello\n\t WORLD  \n"), "hello world");
  EXPECT_EQ(dedupe_key("a  b"), dedupe_key("A\nB "));
  EXPECT_NE(dedupe_key("ab"), dedupe_key("a b"));
  EXPECT_EQ(dedupe_key("\xD0\x9F\xD1\x80"), "\xD0\x9F\xD1\x80");  // non-ASCII bytes kept as they are
  EXPECT_EQ(dedupe_key(" \n "), "");
}

// Each completion breaks exactly the filter its comment names (and those after it), so each is
// counted by the first one; the order is the documented one.
TEST(DistillFilters, EachFilterAndTheFirstOneCounts) {
  DistillFilters f;
  f.max_tokens = 8;
  f.min_language_share = 0.5;
  f.max_repetition = 0.5;
  f.repetition_ngram = 2;
  const bool opens = true;  // the prompt ends with <think>
  const std::string ok = "1+2=3</think><answer>3</answer>";
  EXPECT_EQ(check_completion(completion(ok, {5, 6, 7}, true), f, opens), DistillVerdict::kAccepted);
  EXPECT_EQ(check_completion(completion("no format at all", {5}, false), f, opens), DistillVerdict::kIncorrect);
  EXPECT_EQ(check_completion(completion(ok, {5}, true, FinishReason::kLength), f, opens), DistillVerdict::kTruncated);
  EXPECT_EQ(check_completion(completion("1+2", {1, 2, 3, 4, 5, 6, 7, 8, 9}, true), f, opens),
            DistillVerdict::kTooLong);  // also bad format: too_long comes first
  EXPECT_EQ(check_completion(completion("1+2=3<answer>3</answer>", {5}, true), f, opens), DistillVerdict::kFormat);
  EXPECT_EQ(check_completion(completion("\xD1\x8D\xD1\x82\xD0\xBE</think>3", {5}, true), f, opens),  // "это"
            DistillVerdict::kLanguage);
  EXPECT_EQ(check_completion(completion(ok, {9, 9, 9, 9, 9, 9}, true), f, opens), DistillVerdict::kRepetition);
  // Reasoning without words passes the language filter; English words pass it.
  EXPECT_EQ(check_completion(completion("so 1+2 is three</think>3", {5}, true), f, opens), DistillVerdict::kAccepted);

  // min_reward rejects as "incorrect" too; with correct_only off a wrong answer with a high
  // enough reward passes.
  f.correct_only = false;
  f.min_reward = 0.5;
  Completion wrong = completion(ok, {5}, false);
  wrong.reward = 0.7;
  EXPECT_EQ(check_completion(wrong, f, opens), DistillVerdict::kAccepted);
  wrong.reward = 0.3;
  EXPECT_EQ(check_completion(wrong, f, opens), DistillVerdict::kIncorrect);

  // Off switches.
  DistillFilters off;
  off.correct_only = false;
  off.drop_truncated = false;
  off.require_format = false;
  EXPECT_EQ(check_completion(completion("anything", {9, 9, 9, 9}, false, FinishReason::kLength), off, opens),
            DistillVerdict::kAccepted);
  // Without an opened think block the format needs "<think>" in the completion.
  f = DistillFilters{};
  EXPECT_EQ(check_completion(completion(ok, {5}, true), f, false), DistillVerdict::kFormat);
  EXPECT_EQ(check_completion(completion("<think>" + ok, {5}, true), f, false), DistillVerdict::kAccepted);
}

TEST(DistillFilters, DedupeThenCapPerPrompt) {
  DistillFilters f;
  f.per_prompt_cap = 2;
  std::vector<Completion> cs = {
      completion("1+2=3</think>3", {1}, true),       // accepted
      completion(" 1+2=3</THINK>3", {1}, true),      // format (</THINK>): not a duplicate of the first
      completion("1+2=3</think>3\n", {1}, true),     // duplicate of the first
      completion("1+2=3</think>3", {1}, false),      // incorrect (checked before duplicate)
      completion("2+1=3</think>3", {1}, true),       // accepted (second)
      completion("3+0=3</think>3", {1}, true),       // cap
      completion("\t3+0=3</think>3 \n", {1}, true),  // duplicate of the capped one (it passed 1-6)
  };
  using V = DistillVerdict;
  EXPECT_EQ(filter_completions(cs, f, true), (std::vector<V>{V::kAccepted, V::kFormat, V::kDuplicate, V::kIncorrect,
                                                             V::kAccepted, V::kCap, V::kDuplicate}));
  f.dedupe = false;
  f.per_prompt_cap = 0;
  EXPECT_EQ(filter_completions(cs, f, true), (std::vector<V>{V::kAccepted, V::kFormat, V::kAccepted, V::kIncorrect,
                                                             V::kAccepted, V::kAccepted, V::kAccepted}));
}

TEST(DistillFilters, ConfigErrorsNameTheKey) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    try {
      DistillFilters::from_config(Config::parse(yaml, "f.yaml"), 0);
      ADD_FAILURE() << "no error for " << yaml;
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr(needle));
    }
  };
  expect_error("bogus: 1", "bogus");
  expect_error("max_tokens: -1", "max_tokens");
  expect_error("min_language_share: 2", "min_language_share");
  expect_error("max_repetition: -0.1", "max_repetition");
  expect_error("repetition_ngram: 0", "repetition_ngram");
  expect_error("language: klingon", "language");
  expect_error("correct_only: maybe", "correct_only");
  const DistillFilters f = DistillFilters::from_config(Config::parse("max_tokens: 5\ndedupe: false", "f.yaml"), 3);
  EXPECT_EQ(f.max_tokens, 5);
  EXPECT_FALSE(f.dedupe);
  EXPECT_EQ(f.per_prompt_cap, 3);
}

// ---- template helpers and export lines ----------------------------------------------------

TEST(DistillExport, ThinkOpeningAndUserMessageFromTheTemplate) {
  const ChatTemplate tiny = ChatTemplate::load(kTinyTemplate);
  const ChatTemplate chatml =
      ChatTemplate::load(std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/chatml-think.yaml");
  const ChatTemplate r1 = ChatTemplate::builtin("r1-zero");
  EXPECT_EQ(think_opening(tiny), "<think>");
  EXPECT_EQ(think_opening(chatml), "<think>\n");
  EXPECT_EQ(think_opening(r1), "");  // "Assistant:" opens no think block
  for (const ChatTemplate* t : {&tiny, &chatml, &r1}) {
    for (const std::string msg : {"7+5+3", "", "multi\nline <think> text"}) {
      const auto back = user_message_of(*t, t->render({{"user", msg}}, true));
      ASSERT_TRUE(back.has_value()) << msg;
      EXPECT_EQ(*back, msg);
    }
  }
  EXPECT_FALSE(user_message_of(tiny, chatml.render({{"user", "7+5"}}, true)).has_value());
  EXPECT_FALSE(user_message_of(tiny, "User: 7+5\n").has_value());  // no generation prompt
}

TEST(DistillExport, LinesParseBackWithTheFixedFieldNames) {
  DistillExample e;
  e.id = "q1#2";
  e.source = "data.jsonl";
  e.user_message = "7+5 \"quoted\"";
  e.rendered_prompt = "User: 7+5\nAssistant: <think>";
  e.completion = "12</think><answer>12</answer>\xE2\x82";  // ends inside a UTF-8 character
  e.completion_token_ids = {4, 5};
  e.reward = 1.5;
  const json line = json::parse(distill_line(e, "<think>", nullptr));
  EXPECT_EQ(line["messages"][0], (json{{"role", "user"}, {"content", e.user_message}}));
  EXPECT_EQ(line["messages"][1]["role"], "assistant");
  EXPECT_EQ(line["messages"][1]["content"], "<think>12</think><answer>12</answer>\xEF\xBF\xBD");  // U+FFFD
  EXPECT_EQ(line["id"], "q1#2");
  EXPECT_EQ(line["source"], "data.jsonl");
  EXPECT_EQ(line["reward"], 1.5);
  EXPECT_FALSE(line.contains("teacher"));

  TeacherTopK t;
  t.ids = {{4, 9}, {5, 1}};
  t.logprobs = {{-0.125f, -2.5f}, {-0.1f, -3.0e-7f}};
  const std::string text = distill_line(e, "", &t);
  ASSERT_EQ(text.back(), '\n');
  const json with = json::parse(text);
  EXPECT_EQ(with["messages"][1]["content"], "12</think><answer>12</answer>\xEF\xBF\xBD");
  EXPECT_EQ(with["teacher"]["token_ids"], (json{4, 5}));
  EXPECT_EQ(with["teacher"]["topk_ids"], (json{{4, 9}, {5, 1}}));
  EXPECT_EQ(with["teacher"]["topk_logprobs"][0][1].get<float>(), -2.5f);
  EXPECT_EQ(with["teacher"]["topk_logprobs"][1][0].get<float>(), -0.1f);  // shortest text reads back exactly
  EXPECT_EQ(with["teacher"]["topk_logprobs"][1][1].get<float>(), -3.0e-7f);

  const json pair = json::parse(pair_line(e));
  EXPECT_EQ(pair, (json{{"prompt", e.rendered_prompt}, {"completion", "12</think><answer>12</answer>\xEF\xBF\xBD"}}));
}

// The top-k at each completion position against the full log-softmax of DeepseekModel::logprobs
// (one unpadded sequence at a time): batched and padded, the values agree, are sorted, and the
// sampled token's log-prob is in its top-k exactly when it ranks there. 60 examples of 4..8
// completion tokens: one batch of all of them has more rows than the head's chunk (256).
TEST(DistillExport, TeacherTopKMatchesModelLogprobs) {
  const DeepseekModel model = testing::random_model(testing::tiny_config());
  const int64_t vocab = model.config().vocab_size, k = 5;
  std::vector<DistillExample> examples;
  for (int i = 0; i < 60; ++i) {
    DistillExample e;
    e.id = "e" + std::to_string(i);
    const int prompt = 3 + i % 5, completion = 4 + i % 5;
    const std::vector<int64_t> all = testing::row(testing::random_ids(1, prompt + completion, vocab, 11 + i), 0);
    e.prompt_token_ids.assign(all.begin(), all.begin() + prompt);
    e.completion_token_ids.assign(all.begin() + prompt, all.end());
    examples.push_back(e);
  }
  examples[2].completion_token_ids.clear();  // nothing to predict: empty top-k, no crash
  const std::vector<TeacherTopK> batched = teacher_topk(model, examples, k, 60);
  ASSERT_EQ(batched.size(), examples.size());
  int64_t in_topk = 0, outside = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    ASSERT_EQ(batched[i].ids.size(), e.completion_token_ids.size()) << i;
    if (e.completion_token_ids.empty()) continue;
    std::vector<int64_t> seq(e.prompt_token_ids.begin(), e.prompt_token_ids.end());
    seq.insert(seq.end(), e.completion_token_ids.begin(), e.completion_token_ids.end());
    const at::Tensor ids = at::tensor(seq, at::kLong).unsqueeze(0);
    at::Tensor lp;
    at::Tensor full;
    {
      at::NoGradGuard no_grad;
      lp = model.logprobs(ids)[0];                                                 // [T-1]
      full = model.forward(ids.narrow(1, 0, ids.size(1) - 1)).log_softmax(-1)[0];  // [T-1, V]
    }
    const int64_t p = int64_t(e.prompt_token_ids.size());
    for (size_t j = 0; j < e.completion_token_ids.size(); ++j) {
      const auto& top_ids = batched[i].ids[j];
      const auto& top_lp = batched[i].logprobs[j];
      ASSERT_EQ(top_ids.size(), size_t(k));
      ASSERT_EQ(top_lp.size(), size_t(k));
      const int64_t pos = p - 1 + int64_t(j);
      for (int64_t r = 0; r < k; ++r) {
        if (r > 0) {
          EXPECT_GE(top_lp[r - 1], top_lp[r]);
        }
        EXPECT_NEAR(top_lp[r], full[pos][top_ids[r]].item<double>(), 1e-5) << i << " " << j;
      }
      // The k-th largest of the full row bounds every token outside the top-k.
      EXPECT_NEAR(top_lp[k - 1], std::get<0>(full[pos].topk(k))[k - 1].item<double>(), 1e-5);
      const double sampled = lp[pos].item<double>();
      auto at = std::find(top_ids.begin(), top_ids.end(), e.completion_token_ids[j]);
      if (at != top_ids.end()) {
        ++in_topk;
        EXPECT_NEAR(top_lp[at - top_ids.begin()], sampled, 1e-5) << i << " " << j;
      } else {
        ++outside;
        EXPECT_LE(sampled, top_lp[k - 1] + 1e-6) << i << " " << j;
      }
    }
  }
  EXPECT_GT(in_topk, 0);  // random ids over 64 tokens: both cases occur
  EXPECT_GT(outside, 0);
  // Batch size does not change the result (padding after a sequence is invisible to it).
  const std::vector<TeacherTopK> single = teacher_topk(model, examples, k, 1);
  for (size_t i = 0; i < examples.size(); ++i) {
    EXPECT_EQ(single[i].ids, batched[i].ids) << i;
    for (size_t j = 0; j < single[i].logprobs.size(); ++j)
      for (int64_t r = 0; r < k; ++r) EXPECT_NEAR(single[i].logprobs[j][r], batched[i].logprobs[j][r], 1e-5);
  }
  EXPECT_THROW(teacher_topk(model, examples, vocab + 1, 2), InputError);
  EXPECT_THROW(teacher_topk(model, examples, 0, 2), InputError);
}

// ---- harvest from a training run's store ----------------------------------------------------

struct HarvestFixture {
  ckpt_test::TempDir tmp;
  std::string store_dir = tmp / "run-store";
  ChatTemplate tmpl = ChatTemplate::load(kTinyTemplate);

  ScoredGroup group(const std::string& id, const std::string& question, int64_t step) const {
    ScoredGroup g;
    g.run_id = "run-x";
    g.step = step;
    g.prompt_id = id;
    g.prompt_text = tmpl.render({{"user", question}}, true);
    g.prompt_token_ids = {0, 3, 4, 5};
    g.reference_answer = "3";
    return g;
  }

  // p0: one sample per filter (see the comments); p1: no reference answer; p2: a prompt text the
  // template did not make; p3: nothing correct; p0 again at a later step (merged: one more cap).
  // With `routes`, every completion has routes over 2 MoE layers, top-2: expert (t + l + k) % 5.
  void fill(bool routes = false) {
    auto store = ExperienceStore::open(store_dir);
    ScoredGroup a = group("p0", "1+2", 0);
    const std::string ok = "1+2=3</think><answer>3</answer>";
    a.completions = {
        completion(ok, {5, 6, 7}, true),                                              // 0 accepted
        completion(" 1+2=3</think><answer>3</answer>\n", {5, 6, 7}, true),            // 1 duplicate of 0
        completion("garbage", {5}, false),                                            // 2 incorrect
        completion(ok, {5, 6}, true, FinishReason::kLength),                          // 3 truncated
        completion("1+1+1=3</think>3", {10, 11, 12, 13, 14, 15, 16, 17, 18}, true),   // 4 too_long
        completion("1+2=3<answer>3</answer>", {5}, true),                             // 5 format
        completion("\xD1\x8D\xD1\x82\xD0\xBE</think><answer>3</answer>", {5}, true),  // 6 language
        completion("4-1=3</think><answer>3</answer>", {9, 9, 9, 9, 9, 9}, true),      // 7 repetition
        completion("2+1=3</think><answer>3</answer>", {1, 2, 3}, true),               // 8 accepted
        completion("3=3</think><answer>3</answer>", {2, 3}, true),                    // 9 cap
    };
    a.completions[8].reward = 1.25;
    ScoredGroup b = group("p1", "2+2", 0);
    b.reference_answer = "";
    b.completions = {completion(ok, {5}, true)};
    ScoredGroup c = group("p2", "3+3", 0);
    c.prompt_text = "Question: 3+3\nAnswer:";
    c.completions = {completion(ok, {5}, true)};
    ScoredGroup d = group("p3", "4+4", 1);
    d.completions = {completion(ok, {5}, false), completion("8</think>8", {6}, false)};
    ScoredGroup a2 = group("p0", "1+2", 2);
    a2.completions = {completion("0+3=3</think><answer>3</answer>", {4, 4}, true)};  // 10 cap
    if (routes)
      for (ScoredGroup* g : {&a, &b, &c, &d, &a2})
        for (Completion& x : g->completions) {
          x.routes = {int64_t(g->prompt_token_ids.size() + x.token_ids.size()) - 1, 2, 2, {}};
          for (int64_t t = 0; t < x.routes.tokens; ++t)
            for (int64_t l = 0; l < 2; ++l)
              for (int64_t k = 0; k < 2; ++k) x.routes.experts.push_back(uint16_t((t + l + k) % 5));
        }
    store->put_batch({a, b, c, d});
    store->put(a2);
    store.reset();
    // Two corrupt records written straight into RocksDB under group keys.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), store_dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string flipped = encode_scored_group(b);
    flipped[30] ^= 1;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), GroupKey{1, 900}.encode(), "not a record").ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), GroupKey{3, 901}.encode(), flipped).ok());
  }

  Config config(const std::vector<std::string>& overrides = {}) const {
    Config c = Config::parse("template: " + kTinyTemplate +
                                 "\nrun: {threads: 1}\n"
                                 "distill:\n  out: " +
                                 tmp / "out" + "\n  harvest: {store: " + store_dir +
                                 "}\n"
                                 "  per_prompt_cap: 2\n"
                                 "  filters: {max_tokens: 8, min_language_share: 0.5, max_repetition: 0.5,"
                                 " repetition_ngram: 2}\n",
                             tmp / "distill.yaml");
    for (const auto& o : overrides) c.apply_override(o);
    return c;
  }
};

TEST(DistillHarvest, CountsEveryFilterSkipsAndCorruptRecords) {
  HarvestFixture f;
  f.fill();
  DistillRun how;
  how.progress = false;
  how.command_line = "grpo distill test";
  const DistillSummary s = run_distill(f.config(), how);
  EXPECT_FALSE(s.empty);
  const fs::path out = f.tmp / "out";
  const json card = json::parse(read_file(out / "dataset_card.json"));
  const json& c = card["counts"];
  EXPECT_EQ(c["prompts"], 4);          // p0..p3
  EXPECT_EQ(c["prompts_sampled"], 2);  // p0 (two groups merged) and p3
  EXPECT_EQ(c["samples"], 13);         // 11 of p0 + 2 of p3
  EXPECT_EQ(c["accepted"], 2);
  EXPECT_EQ(c["rejected"], (json{{"cap", 2},
                                 {"duplicate", 1},
                                 {"format", 1},
                                 {"incorrect", 3},
                                 {"language", 1},
                                 {"repetition", 1},
                                 {"too_long", 1},
                                 {"truncated", 1}}));
  EXPECT_EQ(c["prompts_with_zero_accepted"], 1);  // p3
  EXPECT_EQ(c["corrupt_records_skipped"], 2);
  ASSERT_EQ(c["corrupt_record_examples"].size(), 2u);
  EXPECT_THAT(c["corrupt_record_examples"][1].get<std::string>(), HasSubstr("step 3 seq 901: checksum mismatch"));
  EXPECT_EQ(c["prompts_without_answers_skipped"], 1);  // p1
  EXPECT_EQ(c["prompts_not_in_template_skipped"], 1);  // p2
  EXPECT_EQ(s.counts.accepted, 2);
  EXPECT_EQ(card["mode"], "harvest");
  EXPECT_EQ(card["empty"], false);
  EXPECT_EQ(card["sources"]["store"]["path"], f.store_dir);
  EXPECT_EQ(card["sources"]["store"]["runs"], (json{"run-x"}));
  EXPECT_EQ(card["filter_order"],
            (json{"incorrect", "truncated", "too_long", "format", "language", "repetition", "duplicate", "cap"}));
  EXPECT_EQ(card["files"]["distill.jsonl"], 2);
  const std::string md = read_file(out / "dataset_card.md");
  EXPECT_THAT(md, HasSubstr("| repetition | 1 |"));
  EXPECT_THAT(md, HasSubstr("| corrupt_records_skipped | 2 |"));
  EXPECT_THAT(md, HasSubstr("grpo distill test"));

  const std::vector<json> lines = read_jsonl(out / "distill.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["id"], "p0#0");
  EXPECT_EQ(lines[1]["id"], "p0#8");
  EXPECT_EQ(lines[0]["messages"],
            (json{{{"role", "user"}, {"content", "1+2"}},
                  {{"role", "assistant"}, {"content", "<think>1+2=3</think><answer>3</answer>"}}}));
  EXPECT_EQ(lines[1]["reward"], 1.25);
  EXPECT_EQ(lines[1]["source"], f.store_dir);
  const std::vector<json> pairs = read_jsonl(out / "pairs.jsonl");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1],
            (json{{"prompt", "User: 1+2\nAssistant: <think>"}, {"completion", "2+1=3</think><answer>3</answer>"}}));
  for (const char* name : {"distill.jsonl", "pairs.jsonl", "dataset_card.json", "dataset_card.md"})
    EXPECT_TRUE(fs::exists(out / name)) << name;
  for (const auto& e : fs::directory_iterator(out))  // no temp files left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(DistillHarvest, TopKFromTheGivenTeacherAndAnEmptyResult) {
  HarvestFixture f;
  f.fill();
  save_pretrained(testing::random_model(testing::tiny_config()), f.tmp / "teacher");
  DistillRun how;
  how.progress = false;
  run_distill(f.config({"model.path=" + f.tmp / "teacher", "distill.topk_logprobs=4"}), how);
  const std::vector<json> lines = read_jsonl(fs::path(f.tmp / "out") / "distill.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["teacher"]["token_ids"], (json{1, 2, 3}));
  ASSERT_EQ(lines[1]["teacher"]["topk_ids"].size(), 3u);
  for (const auto& row : lines[1]["teacher"]["topk_logprobs"]) EXPECT_EQ(row.size(), 4u);
  const json card = json::parse(read_file(fs::path(f.tmp / "out") / "dataset_card.json"));
  EXPECT_EQ(card["topk_logprobs"], 4);
  EXPECT_EQ(card["teacher"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(card["teacher"]["sha256"], sha256_file(f.tmp / "teacher/model.safetensors"));

  // Nothing passes: the files are written, empty, and the card says so.
  const DistillSummary s = run_distill(f.config({"distill.filters.min_reward=5"}), how);
  EXPECT_TRUE(s.empty);
  EXPECT_EQ(read_file(fs::path(f.tmp / "out") / "distill.jsonl"), "");
  const json empty = json::parse(read_file(fs::path(f.tmp / "out") / "dataset_card.json"));
  EXPECT_EQ(empty["empty"], true);
  EXPECT_EQ(empty["counts"]["rejected"]["incorrect"], 13);
  EXPECT_THAT(read_file(fs::path(f.tmp / "out") / "dataset_card.md"), HasSubstr("EMPTY"));
}

TEST(DistillHarvest, RoutesOnlyOnRequest) {
  HarvestFixture f;
  f.fill();
  DistillRun how;
  how.progress = false;
  const fs::path out = f.tmp / "out";
  run_distill(f.config(), how);
  const std::string without = read_file(out / "distill.jsonl");
  ckpt_test::expect_input_error(
      [&] { run_distill(f.config({"distill.routes=true"}), how); },
      {"group (step 0, prompt 'p0'): completion 0 has no routes", "distill.routes", f.store_dir});

  // The same groups with routes: not exported by default (byte for byte the same file) ...
  fs::remove_all(f.store_dir);
  f.fill(/*routes=*/true);
  run_distill(f.config(), how);
  EXPECT_EQ(read_file(out / "distill.jsonl"), without);
  // ... and with distill.routes, a "routes" field on every line.
  run_distill(f.config({"distill.routes=true"}), how);
  const std::vector<json> lines = read_jsonl(out / "distill.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const json& r = lines[1]["routes"];  // p0#8: prompt 4 + completion 3 tokens - 1 = 6 positions
  EXPECT_EQ(r["layers"], 2);
  EXPECT_EQ(r["top_k"], 2);
  ASSERT_EQ(r["experts"].size(), 6u);
  EXPECT_EQ(r["experts"][0], (json{{0, 1}, {1, 2}}));
  EXPECT_EQ(r["experts"][5], (json{{0, 1}, {1, 2}}));  // (5 + l + k) % 5
  EXPECT_EQ(lines[1]["id"], "p0#8");
  EXPECT_EQ(lines[0]["routes"]["experts"].size(), 6u);
  json stripped = lines[1];
  stripped.erase("routes");
  EXPECT_EQ(stripped, json::parse(without.substr(without.find('\n') + 1)));  // otherwise the same line
}

TEST(DistillHarvest, Sha256OfKnownText) {
  ckpt_test::TempDir tmp;
  std::ofstream(tmp / "abc") << "abc";
  EXPECT_EQ(sha256_file(tmp / "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
  EXPECT_THROW(sha256_file(tmp / "missing"), InputError);
}

TEST(DistillOptions, ErrorsNameTheKey) {
  HarvestFixture f;
  auto expect_error = [&](const std::vector<std::string>& overrides, const std::string& needle) {
    try {
      DistillOptions::from_config(f.config(overrides));
      ADD_FAILURE() << "no error for " << overrides[0];
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr(needle));
    }
  };
  expect_error({"distill.bogus=1"}, "bogus");
  expect_error({"distill.filters.max_tokenz=1"}, "max_tokenz");
  expect_error({"distill.batch_prompts=0"}, "distill.batch_prompts");
  expect_error({"distill.per_prompt_cap=-1"}, "distill.per_prompt_cap");
  expect_error({"distill.topk_logprobs=3"}, "model.path");  // harvest without a teacher
  expect_error({"distill.harvest.store=\"\""}, "distill.harvest.store");
  expect_error({"sft={a: 1}"}, "sft");
  // Sample mode reads `grpo train`'s sections: data.train is required.
  expect_error({"distill.harvest=null", "model.path=m"}, "data.train");
  EXPECT_EQ(DistillOptions::from_config(f.config()).out_dir, f.tmp / "out");
}

// ---- the CLI end to end, sampling from a tiny random model -----------------------------------

// A tiny random model (bpe-tokenizer vocabulary), 16 prompts plus rows without answers, and a
// config whose verifier passes any text ("overlong" with a large limit), so that acceptance
// does not depend on a random model being right.
struct SampleFixture {
  ckpt_test::TempDir tmp;
  explicit SampleFixture() {
    DeepseekModel m(testing::tiny_config({{"vocab_size", 3000}, {"initializer_range", 0.02}}));
    init_weights(m, 5);
    save_pretrained(m, tmp / "model");
    fs::copy_file(std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/tokenizer.json",
                  fs::path(tmp / "model") / "tokenizer.json");
    std::ofstream data(tmp / "train.jsonl");
    for (int i = 0; i < 16; ++i) {
      data << "{\"id\": \"q" << i << "\", \"prompt\": \"" << i << "+" << i << "\", \"answer\": \"" << 2 * i << "\"}\n";
      if (i == 3) data << "{\"id\": \"na1\", \"prompt\": \"no answer here\"}\n";
      if (i == 7) data << "{\"id\": \"na2\", \"prompt\": \"blank answer\", \"answer\": \"  \"}\n";
      if (i == 9) data << "not json\n";
    }
  }
  std::string config(const std::string& out) const {
    const fs::path p = tmp / (out + ".yaml");
    std::ofstream(p) << "run: {name: d, out_dir: " << tmp / "run"
                     << ", seed: 3, threads: 1}\n"
                     << "model: {path: " << tmp / "model"
                     << "}\n"
                     << "template: " << kTinyTemplate << "\n"
                     << "data:\n  train: {path: " << tmp / "train.jsonl"
                     << "}\n"
                     << "reward: {config: " << GRPO_SOURCE_DIR << "/configs/reward.yaml, verifier: overlong,"
                     << " options: {max_len: 100000, cache: 1}}\n"
                     << "rollout: {workers: 1, group_size: 3, sampling: {temperature: 1.0, max_new_tokens: 24}}\n"
                     << "distill:\n  out: " << tmp / out << "\n  batch_prompts: 2\n"
                     << "  filters: {require_format: false, drop_truncated: false}\n";
    return p.string();
  }
};

int64_t stored_groups(const std::string& dir) {
  try {
    return ExperienceStore::open(dir, {.create_if_missing = false, .read_only = true})->count();
  } catch (const std::exception&) {
    return 0;  // not created yet
  }
}

// Runs `grpo distill` to the end; returns its exit status and output.
std::pair<int, std::string> run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {GRPO_BINARY, "distill"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--quiet");
  testing::Subprocess p(argv, "/dev/null", true);
  std::string out = p.read_all();
  return {p.wait(300'000), out};
}

TEST(DistillCli, KillNineAndResumeGivesTheUninterruptedExport) {
  SampleFixture f;
  const std::string ref_cfg = f.config("ref"), cut_cfg = f.config("cut");
  {
    auto [rc, out] = run_cli({ref_cfg});
    ASSERT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("sampling 16 of 16 prompts x 3"));
  }
  const fs::path ref = f.tmp / "ref", cut = f.tmp / "cut";
  const json ref_card = json::parse(read_file(ref / "dataset_card.json"));
  const json& c = ref_card["counts"];
  EXPECT_EQ(c["prompts"], 16);
  EXPECT_EQ(c["prompts_sampled"], 16);
  EXPECT_EQ(c["samples"], 48);
  EXPECT_EQ(c["dataset_rows_skipped"], 3);             // na1, na2, "not json"
  EXPECT_EQ(c["prompts_without_answers_skipped"], 2);  // na1, na2
  EXPECT_EQ(c["reward_errors"], 0);
  // The verifier passes every text and format/truncation are off: only duplicates are rejected.
  EXPECT_EQ(c["accepted"].get<int64_t>() + c["rejected"]["duplicate"].get<int64_t>(), 48);
  EXPECT_GT(c["accepted"].get<int64_t>(), 16);
  EXPECT_EQ(ref_card["mode"], "sample");
  EXPECT_EQ(ref_card["sources"]["dataset"]["sha256"], sha256_file(f.tmp / "train.jsonl"));
  EXPECT_EQ(ref_card["teacher"]["sha256"], sha256_file(f.tmp / "model/model.safetensors"));
  // The student must use the teacher's tokenizer (top-k ids): the card pins it by digest.
  EXPECT_EQ(ref_card["tokenizer"]["path"], f.tmp / "model/tokenizer.json");
  EXPECT_EQ(ref_card["tokenizer"]["sha256"], sha256_file(f.tmp / "model/tokenizer.json"));
  EXPECT_EQ(ref_card["sampling"]["samples_per_prompt"], 3);
  const std::vector<json> lines = read_jsonl(ref / "distill.jsonl");
  ASSERT_EQ(int64_t(lines.size()), c["accepted"].get<int64_t>());
  EXPECT_EQ(lines[0]["messages"][0]["content"], "0+0");
  EXPECT_THAT(lines[0]["messages"][1]["content"].get<std::string>(), ::testing::StartsWith("<think>"));
  EXPECT_EQ(read_jsonl(ref / "pairs.jsonl").size(), lines.size());

  {  // kill -9 once the first batch is stored, before the last one is.
    testing::Subprocess p({GRPO_BINARY, "distill", cut_cfg, "--quiet"}, "/dev/null", true);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (stored_groups((cut / "store").string()) < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    kill(p.pid(), SIGKILL);
    p.wait();
  }
  const int64_t before = stored_groups((cut / "store").string());
  ASSERT_LT(before, 16) << "the run finished before the kill";
  EXPECT_FALSE(fs::exists(cut / "distill.jsonl"));
  {
    auto [rc, out] = run_cli({cut_cfg});
    ASSERT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("sampling " + std::to_string(16 - before) + " of 16 prompts"));
  }
  EXPECT_EQ(read_file(cut / "distill.jsonl"), read_file(ref / "distill.jsonl"));
  EXPECT_EQ(read_file(cut / "pairs.jsonl"), read_file(ref / "pairs.jsonl"));
  EXPECT_EQ(json::parse(read_file(cut / "dataset_card.json"))["counts"], c);
  {  // Every prompt stored exactly once.
    auto store = ExperienceStore::open((cut / "store").string(), {.create_if_missing = false, .read_only = true});
    std::multiset<std::string> ids;
    store->scan(0, 1 << 30, [&](const GroupKey&, const ScoredGroup& g) {
      ids.insert(g.prompt_id);
      return true;
    });
    EXPECT_EQ(ids.size(), 16u);
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 16u);
  }
  // A second run has nothing left to sample and writes the same export.
  auto [rc, out] = run_cli({cut_cfg});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("sampling")));
  EXPECT_EQ(read_file(cut / "distill.jsonl"), read_file(ref / "distill.jsonl"));
}

// SIGTERM once a batch is stored: sampling stops after the current batch, nothing is exported, the
// message says where the samples are and how to resume; the same command samples the rest once.
TEST(DistillCli, SigtermStopsAfterTheBatchAndTheSameCommandResumes) {
  SampleFixture f;
  const std::string cfg = f.config("out");
  const fs::path out_dir = f.tmp / "out";
  int64_t stored = 0;
  {
    testing::Subprocess p({GRPO_BINARY, "distill", cfg, "--quiet"}, "/dev/null", true);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (stored_groups((out_dir / "store").string()) < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    p.signal(SIGTERM);
    const std::string out = p.read_all();
    ASSERT_EQ(p.wait(120'000), 128 + SIGTERM) << out;
    stored = stored_groups((out_dir / "store").string());
    ASSERT_LT(stored, 16) << "the run finished before the signal";
    EXPECT_THAT(out, HasSubstr("distill: Terminated: stopping after the current batch"));
    EXPECT_THAT(out, HasSubstr("distill: stopped after sampling " + std::to_string(stored) +
                               " prompts (Terminated); every sampled prompt is in " + out_dir.string() +
                               "/store; run the same command to resume"));
  }
  EXPECT_FALSE(fs::exists(out_dir / "distill.jsonl"));
  auto [rc, out] = run_cli({cfg});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("sampling " + std::to_string(16 - stored) + " of 16 prompts"));
  EXPECT_EQ(stored_groups((out_dir / "store").string()), 16);
  EXPECT_TRUE(fs::exists(out_dir / "distill.jsonl"));
}

TEST(DistillCli, ExportOnlyWithOtherFiltersTopKAndAnEmptyResult) {
  SampleFixture f;
  const std::string cfg = f.config("out");
  const fs::path out = f.tmp / "out";
  {
    auto [rc, text] = run_cli({cfg, "--export-only"});  // nothing sampled yet
    EXPECT_EQ(rc, 2) << text;                           // bad input
    EXPECT_THAT(text, HasSubstr("no distillation store"));
  }
  {
    auto [rc, text] = run_cli({cfg, "reward.verifier=nope"});  // fails before sampling anything
    EXPECT_EQ(rc, 2) << text;
    EXPECT_THAT(text, HasSubstr("reward.verifier': unknown verifier 'nope'"));
    EXPECT_EQ(stored_groups((out / "store").string()), 0);
  }
  {
    auto [rc, text] = run_cli({cfg});
    ASSERT_EQ(rc, 0) << text;
  }
  // Cap 1 per prompt, and the teacher's top-512 (of 3000: the random model is near uniform, so
  // about a sixth of the sampled tokens are among them): from the store alone.
  auto [rc, text] = run_cli({cfg, "--export-only", "distill.per_prompt_cap=1", "distill.topk_logprobs=512"});
  ASSERT_EQ(rc, 0) << text;
  EXPECT_THAT(text, HasSubstr("0 sampled now"));
  const json card = json::parse(read_file(out / "dataset_card.json"));
  EXPECT_EQ(card["counts"]["accepted"], 16);
  EXPECT_EQ(card["counts"]["rejected"]["cap"].get<int64_t>() + card["counts"]["rejected"]["duplicate"].get<int64_t>(),
            32);
  const std::vector<json> lines = read_jsonl(out / "distill.jsonl");
  ASSERT_EQ(lines.size(), 16u);
  // The teacher's log-probs at temperature 1 against the rollout engine's log-probs of the same
  // sampled tokens (stored in the experience store): equal where the token is in the top-k.
  auto store = ExperienceStore::open((out / "store").string(), {.create_if_missing = false, .read_only = true});
  std::map<std::string, Completion> stored;
  store->scan(0, 1 << 30, [&](const GroupKey&, const ScoredGroup& g) {
    for (size_t i = 0; i < g.completions.size(); ++i) stored[g.prompt_id + "#" + std::to_string(i)] = g.completions[i];
    return true;
  });
  int64_t checked = 0;
  for (const auto& line : lines) {
    const Completion& c = stored.at(line["id"].get<std::string>());
    const json& t = line["teacher"];
    ASSERT_EQ(t["token_ids"].get<std::vector<int32_t>>(), c.token_ids);
    ASSERT_EQ(t["topk_ids"].size(), c.token_ids.size());
    for (size_t j = 0; j < c.token_ids.size(); ++j) {
      const auto ids = t["topk_ids"][j].get<std::vector<int32_t>>();
      const auto lps = t["topk_logprobs"][j].get<std::vector<float>>();
      ASSERT_EQ(ids.size(), 512u);
      EXPECT_LE(c.logprobs[j], lps[0] + 1e-3);
      auto at = std::find(ids.begin(), ids.end(), c.token_ids[j]);
      if (at != ids.end()) {
        EXPECT_NEAR(lps[at - ids.begin()], c.logprobs[j], 1e-3) << line["id"] << " " << j;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);

  // Nothing passes (the overlong reward is 0 < 1): exit status 3, empty files, the card says so.
  auto [rc2, text2] = run_cli({cfg, "--export-only", "distill.filters.min_reward=1"});
  EXPECT_EQ(rc2, 3) << text2;
  EXPECT_THAT(text2, HasSubstr("EMPTY"));
  EXPECT_EQ(read_file(out / "distill.jsonl"), "");
  EXPECT_EQ(read_file(out / "pairs.jsonl"), "");
  const json empty = json::parse(read_file(out / "dataset_card.json"));
  EXPECT_EQ(empty["empty"], true);
  EXPECT_EQ(empty["counts"]["rejected"]["incorrect"], 48);
}

}  // namespace
}  // namespace grpo
