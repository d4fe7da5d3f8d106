// The engine against the plain model: greedy tokens equal repeated full forwards (no cache) with
// groups and mixed prompt lengths in one batch; reported log-probs equal DeepseekModel::logprobs;
// chunked prefill, preemption and batch composition change nothing; stop conditions; weight swaps.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

struct Case {
  std::vector<int64_t> prompt;
  int64_t n, max_new;
};

// Submits every case (greedy), runs the engine, and checks each sample against the no-cache
// greedy reference and its log-probs against DeepseekModel::logprobs.
void expect_greedy_parity(const DeepseekModel& m, std::shared_ptr<const DeepseekModel> shared,
                          const std::vector<Case>& cases, EngineOptions opt, EngineStats* stats = nullptr) {
  Engine engine(shared, 0, opt);
  std::vector<uint64_t> ids;
  for (const Case& c : cases) {
    GenerationParams g;
    g.sampling.temperature = 0;
    g.max_new_tokens = c.max_new;
    g.stop_token_ids = {};
    ids.push_back(engine.submit({c.prompt, c.n, g}));
  }
  CompletionMap done = by_key(engine.run_until_idle());
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int64_t> want = greedy_reference(m, cases[i].prompt, cases[i].max_new, m.config().eos_token_ids);
    std::vector<float> want_lp = model_logprobs(m, cases[i].prompt, want);
    for (int64_t k = 0; k < cases[i].n; ++k) {
      ASSERT_TRUE(done.count({ids[i], k})) << "request " << i << " sample " << k;
      const Completion& c = done.at({ids[i], k});
      EXPECT_EQ(c.token_ids, want) << "request " << i << " sample " << k;
      ASSERT_EQ(c.logprobs.size(), c.token_ids.size());
      if (c.token_ids == want)
        for (size_t t = 0; t < want.size(); ++t)
          EXPECT_NEAR(c.logprobs[t], want_lp[t], 1e-4) << i << "," << k << "," << t;
      EXPECT_EQ(c.prompt_tokens, static_cast<int64_t>(cases[i].prompt.size()));
      EXPECT_EQ(c.finish_reason,
                want.size() < static_cast<size_t>(cases[i].max_new) ? FinishReason::kEos : FinishReason::kLength);
    }
  }
  EXPECT_EQ(done.size(), [&] {
    size_t n = 0;
    for (const Case& c : cases) n += c.n;
    return n;
  }());
  EngineStats s = engine.stats();
  EXPECT_EQ(s.pages_used, 0) << "every page is released when all sequences are done";
  EXPECT_EQ(s.running_sequences + s.waiting_sequences + s.unfinished_samples, 0);
  if (stats) *stats = s;
}

std::vector<Case> mixed_cases(int64_t vocab) {
  return {{random_prompt(3, vocab, 1), 2, 10},
          {random_prompt(17, vocab, 2), 1, 14},
          {random_prompt(40, vocab, 3), 4, 9},
          {random_prompt(1, vocab, 4), 1, 12},
          {random_prompt(16, vocab, 5), 3, 11}};
}

TEST(EngineGreedy, Dsv3TinyFixtureMatchesFullForwardsAndHf) {
  DeepseekModel m = load_pretrained(fixture_dir());
  auto shared = std::make_shared<const DeepseekModel>(load_pretrained(fixture_dir()));
  expect_greedy_parity(m, shared, mixed_cases(m.config().vocab_size), {});

  // The HF greedy continuation of the fixture too.
  SafetensorsReader ref(fixture_dir() + "/reference.safetensors");
  std::vector<int64_t> prompt = row(ref.get("greedy_prompt").data, 0), want = row(ref.get("greedy_output").data, 0);
  Engine engine(shared, 0);
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 16;
  engine.submit({prompt, 2, g});
  for (const Completion& c : engine.run_until_idle())
    EXPECT_EQ(c.token_ids, std::vector<int64_t>(want.begin() + 8, want.end()));
}

TEST(EngineGreedy, SmallLikeModelMatchesFullForwards) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  EngineStats s;
  expect_greedy_parity(*shared, shared, mixed_cases(c.vocab_size), {}, &s);
  EXPECT_EQ(s.preemptions, 0);
  EXPECT_EQ(s.completions, 11);
}

TEST(EngineGreedy, ChunkedPrefillAndSmallBatchesChangeNothing) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  EngineOptions opt;
  opt.max_seqs = 4;
  opt.max_batched_tokens = 7;  // a 40-token prompt is fed in 6 chunks
  opt.page_size = 4;
  EngineStats s;
  expect_greedy_parity(*shared, shared, mixed_cases(c.vocab_size), opt, &s);
  EXPECT_GT(s.steps, 40);
}

TEST(EngineGreedy, PreemptionUnderATinyCacheGivesTheSameTokens) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  EngineOptions opt;
  opt.page_size = 4;
  opt.num_pages = 16;  // 64 token slots for 11 sequences of up to 49 tokens
  EngineStats s;
  expect_greedy_parity(*shared, shared, mixed_cases(c.vocab_size), opt, &s);
  EXPECT_GT(s.preemptions, 0);
  EXPECT_LE(s.peak_pages_used, 16);
}

TEST(EngineLogprobs, AtTemperatureOneTheyAreTheModelsLogprobs) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  Engine engine(shared, 0);
  GenerationParams g;
  g.sampling.temperature = 1.0;
  g.sampling.seed = 11;
  g.max_new_tokens = 12;
  std::vector<int64_t> p1 = random_prompt(9, c.vocab_size, 21), p2 = random_prompt(30, c.vocab_size, 22);
  uint64_t a = engine.submit({p1, 3, g}), b = engine.submit({p2, 2, g});
  std::vector<Completion> done = engine.run_until_idle();
  ASSERT_EQ(done.size(), 5u);
  std::set<std::vector<int64_t>> distinct;
  for (const Completion& comp : done) {
    const auto& prompt = comp.request_id == a ? p1 : p2;
    ASSERT_TRUE(comp.request_id == a || comp.request_id == b);
    std::vector<float> want = model_logprobs(*shared, prompt, comp.token_ids);
    ASSERT_EQ(comp.logprobs.size(), want.size());
    for (size_t t = 0; t < want.size(); ++t) EXPECT_NEAR(comp.logprobs[t], want[t], 1e-4);
    distinct.insert(comp.token_ids);
  }
  EXPECT_EQ(distinct.size(), 5u) << "samples of a group differ (their own random keys)";
}

// Seeded sampling with truncation gives the same tokens whatever else is in the engine.
TEST(EngineSampling, SeededSamplesDoNotDependOnBatchComposition) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  GenerationParams g;
  g.sampling = {0.9, 0.95, 50, 1234};
  g.max_new_tokens = 16;
  const std::vector<int64_t> prompt = random_prompt(21, c.vocab_size, 31);

  auto run = [&](EngineOptions opt, bool crowd) {
    Engine engine(shared, 0, opt);
    GenerationParams other = g;
    other.sampling.seed = 99;
    if (crowd) {
      engine.submit({random_prompt(33, c.vocab_size, 32), 5, other});
      engine.submit({random_prompt(4, c.vocab_size, 33), 2, other});
    }
    uint64_t id = engine.submit({prompt, 4, g});
    if (crowd) engine.submit({random_prompt(50, c.vocab_size, 34), 3, other});
    std::map<int64_t, std::vector<int64_t>> out;
    for (const Completion& comp : engine.run_until_idle())
      if (comp.request_id == id) out[comp.sample_index] = comp.token_ids;
    return out;
  };
  auto alone = run({}, false);
  ASSERT_EQ(alone.size(), 4u);
  EngineOptions small;
  small.max_seqs = 5;
  small.max_batched_tokens = 9;
  EngineOptions tiny_cache;
  tiny_cache.page_size = 4;
  tiny_cache.num_pages = 24;
  EXPECT_EQ(run({}, true), alone);
  EXPECT_EQ(run(small, true), alone);
  EXPECT_EQ(run(tiny_cache, true), alone);
  EXPECT_NE(alone.at(0), alone.at(1));
}

// A group of 8 with a 128-token prompt holds the prompt's pages once.
TEST(EnginePrefixSharing, GroupSharesPromptPages) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  for (int64_t prompt_len : {128, 120}) {
    EngineOptions opt;
    opt.page_size = 16;
    Engine engine(shared, 0, opt);
    GenerationParams g;
    g.sampling.temperature = 1.0;
    g.max_new_tokens = 20;
    engine.submit({random_prompt(prompt_len, c.vocab_size, 41), 8, g});
    engine.step();  // prefill once, fork into 8 samples (first token drawn)
    EngineStats s = engine.stats();
    EXPECT_EQ(s.running_sequences, 8);
    EXPECT_EQ(s.prefill_tokens, prompt_len) << "the prompt is fed once";
    EXPECT_EQ(s.pages_used, 8) << "8 prompt pages shared by 8 samples";
    engine.run_until_idle();
    s = engine.stats();
    // Slots prompt_len .. prompt_len + 18 per sample (the last token is never fed).
    // 128: 8 shared pages + 2 own per sample (slots 128..146). 120: 7 full shared pages; the
    // partial 8th is copied on write by 7 samples (the last writer keeps the original); + 1 own
    // page each for slots 128..138.
    EXPECT_EQ(s.peak_pages_used, prompt_len == 128 ? 8 + 8 * 2 : 7 + 8 + 8) << prompt_len;
    EXPECT_EQ(s.pages_used, 0);
    EXPECT_EQ(s.completions, 8);
  }
}

TEST(EngineStops, StopTokensEosAndLength) {
  ModelConfig c = small_like_config();
  DeepseekModel base = random_model(c);
  std::vector<int64_t> prompt = random_prompt(12, c.vocab_size, 51);
  std::vector<int64_t> ref = greedy_reference(base, prompt, 20);
  const int64_t third = ref[2];
  const size_t first_third = std::find(ref.begin(), ref.end(), third) - ref.begin();
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 20;
  {
    auto shared = shared_model(random_model(c));
    Engine engine(shared, 0);
    GenerationParams stop = g;
    stop.stop_token_ids = {third};
    uint64_t a = engine.submit({prompt, 1, stop});
    GenerationParams shorter = g;
    shorter.max_new_tokens = 5;
    uint64_t b = engine.submit({prompt, 1, shorter});
    CompletionMap done = by_key(engine.run_until_idle());
    EXPECT_EQ(done.at({a, 0}).finish_reason, FinishReason::kStop);
    EXPECT_EQ(done.at({a, 0}).token_ids, std::vector<int64_t>(ref.begin(), ref.begin() + first_third + 1));
    EXPECT_EQ(done.at({b, 0}).finish_reason, FinishReason::kLength);
    EXPECT_EQ(done.at({b, 0}).token_ids, std::vector<int64_t>(ref.begin(), ref.begin() + 5));
  }
  {  // The same weights with that token as the model's EOS.
    auto shared = shared_model(random_model(small_like_config({{"eos_token_id", third}})));
    Engine engine(shared, 0);
    engine.submit({prompt, 2, g});
    for (const Completion& comp : engine.run_until_idle()) {
      EXPECT_EQ(comp.finish_reason, FinishReason::kEos);
      EXPECT_EQ(comp.token_ids, std::vector<int64_t>(ref.begin(), ref.begin() + first_third + 1));
    }
  }
  {  // The context limit ends a sequence with "length".
    auto shared = shared_model(random_model(c));
    EngineOptions opt;
    opt.max_context = 16;
    Engine engine(shared, 0, opt);
    engine.submit({prompt, 1, g});
    std::vector<Completion> done = engine.run_until_idle();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].finish_reason, FinishReason::kLength);
    EXPECT_EQ(done[0].token_ids, std::vector<int64_t>(ref.begin(), ref.begin() + 4));  // 12 + 4 = 16
  }
}

TEST(EngineStops, StopStringsAndTextWithTheTokenizer) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  Tokenizer tok = Tokenizer::load(std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/tokenizer.json");
  std::vector<int64_t> prompt;
  for (int32_t id : tok.encode("Solve 2+2. <think>")) prompt.push_back(id);
  std::vector<int64_t> ref = greedy_reference(*shared, prompt, 24);
  auto text_of = [&](size_t n) { return tok.decode(std::vector<int32_t>(ref.begin(), ref.begin() + n), false); };
  // A stop string: the last 2 bytes of the text after 6 tokens (found first where it first appears).
  std::string six = text_of(6);
  ASSERT_GE(six.size(), 2u) << "the reference text is too short for this test";
  const std::string stop = six.substr(six.size() - 2);
  size_t first = 1;
  while (text_of(first).find(stop) == std::string::npos) ++first;

  Engine engine(shared, 0, {}, &tok);
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 24;
  g.stop_strings = {"never appears \x01", stop};
  engine.submit({prompt, 1, g});
  GenerationParams plain = g;
  plain.stop_strings.clear();
  engine.submit({prompt, 1, plain});
  CompletionMap done = by_key(engine.run_until_idle());
  const Completion& s = done.at({1, 0});
  EXPECT_EQ(s.finish_reason, FinishReason::kStop);
  EXPECT_EQ(s.token_ids, std::vector<int64_t>(ref.begin(), ref.begin() + first));
  EXPECT_EQ(s.text, text_of(first));
  const Completion& p = done.at({2, 0});
  EXPECT_EQ(p.token_ids, ref);
  EXPECT_EQ(p.text, text_of(ref.size()));
}

// RESTART policy: unfinished samples start again on the new weights; finished ones keep theirs.
TEST(EngineWeights, SwapRestartsUnfinishedSamplesOnTheNewVersion) {
  ModelConfig c = small_like_config();
  auto a = shared_model(random_model(c, {}, 7));
  DeepseekModel b = random_model(c, {}, 8);
  std::vector<int64_t> p1 = random_prompt(10, c.vocab_size, 61), p2 = random_prompt(25, c.vocab_size, 62);
  Engine engine(a, 1);
  GenerationParams quick, slow;
  quick.sampling.temperature = slow.sampling.temperature = 0;
  quick.max_new_tokens = 2;
  slow.max_new_tokens = 12;
  uint64_t q = engine.submit({p1, 1, quick});
  uint64_t s = engine.submit({p2, 3, slow});
  for (int i = 0; i < 4; ++i) engine.step();  // the quick one is done, the slow ones half-way
  engine.set_weights(2, b.state_dict());
  EXPECT_EQ(engine.stats().weight_version, 1) << "the swap waits for the next step";
  CompletionMap done = by_key(engine.run_until_idle());
  ASSERT_EQ(done.size(), 4u);
  EXPECT_EQ(done.at({q, 0}).weight_version, 1);
  EXPECT_EQ(done.at({q, 0}).token_ids, greedy_reference(*a, p1, 2));
  std::vector<int64_t> want_b = greedy_reference(b, p2, 12);
  std::vector<float> want_lp = model_logprobs(b, p2, want_b);
  for (int64_t k = 0; k < 3; ++k) {
    const Completion& comp = done.at({s, k});
    EXPECT_EQ(comp.weight_version, 2);
    EXPECT_EQ(comp.token_ids, want_b);
    for (size_t t = 0; t < want_b.size(); ++t) EXPECT_NEAR(comp.logprobs[t], want_lp[t], 1e-4);
  }
  EngineStats st = engine.stats();
  EXPECT_EQ(st.weight_version, 2);
  EXPECT_EQ(st.restarts, 3);
}

// submit/poll/set_weights/stats from other threads while one thread drives step().
TEST(EngineThreads, ClientsOnOtherThreads) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  Engine engine(shared, 0);
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop) {
      if (!engine.step()) engine.wait_for_work(std::chrono::milliseconds(20));
    }
  });
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 6;
  std::vector<std::thread> clients;
  std::vector<uint64_t> ids(4);
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&, i] { ids[i] = engine.submit({random_prompt(5 + i, c.vocab_size, 70 + i), 2, g}); });
  for (auto& t : clients) t.join();
  std::vector<Completion> got;
  for (int tries = 0; got.size() < 8 && tries < 3000; ++tries) {
    for (Completion& comp : engine.poll()) got.push_back(std::move(comp));
    engine.stats();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  loop.join();
  ASSERT_EQ(got.size(), 8u);
  for (const Completion& comp : got) {
    const size_t i = std::find(ids.begin(), ids.end(), comp.request_id) - ids.begin();
    ASSERT_LT(i, ids.size());
    EXPECT_EQ(comp.token_ids, greedy_reference(*shared, random_prompt(5 + i, c.vocab_size, 70 + i), 6));
  }
}

}  // namespace
