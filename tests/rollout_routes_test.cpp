// The engine's routes (Request::record_routes): every completion's Routes equal the routes a
// plain full forward over prompt ++ completion reports (Feed::routes), through shared prompts,
// chunked prefill, preemption and recompute, and weight-swap restarts.
#include <gtest/gtest.h>

#include "model/routes_tensor.h"
#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

// The routes of one full forward over prompt ++ completion without its last token.
Routes full_forward_routes(const CausalLM& m, const std::vector<int64_t>& prompt,
                           const std::vector<int64_t>& completion) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> ids = prompt;
  ids.insert(ids.end(), completion.begin(), completion.end() - 1);
  std::vector<at::Tensor> layers;
  Feed feed;
  feed.routes = &layers;
  m.hidden(at::tensor(ids, at::kLong).unsqueeze(0), feed);
  Routes r;
  append_routes(r, layers, 0, static_cast<int64_t>(ids.size()));
  return r;
}

// Every completion's routes against the full forward of `model_of(version)`; returns the (token,
// layer) pairs that differ (a near-tie flipped by the chunked forwards' arithmetic) and checks shapes.
int64_t routes_mismatches(const std::vector<Completion>& done, const std::map<uint64_t, std::vector<int64_t>>& prompts,
                          const std::function<const CausalLM&(int64_t)>& model_of) {
  int64_t differ = 0;
  for (const Completion& c : done) {
    const Routes want = full_forward_routes(model_of(c.weight_version), prompts.at(c.request_id), c.token_ids);
    EXPECT_EQ(c.routes.tokens, c.prompt_tokens + static_cast<int64_t>(c.token_ids.size()) - 1);
    EXPECT_EQ(c.routes.tokens, want.tokens);
    EXPECT_EQ(c.routes.layers, 2);
    EXPECT_EQ(c.routes.top_k, 4);
    if (c.routes.tokens != want.tokens) continue;
    for (int64_t t = 0; t < want.tokens; ++t)
      for (int64_t l = 0; l < want.layers; ++l)
        differ += std::equal(want.experts.begin() + want.offset(t, l), want.experts.begin() + want.offset(t, l) + 4,
                             c.routes.experts.begin() + c.routes.offset(t, l))
                      ? 0
                      : 1;
  }
  return differ;
}

struct Sampled {
  std::vector<Completion> done;
  std::map<uint64_t, std::vector<int64_t>> prompts;
};

Sampled sample_mixed(Engine& engine, int64_t vocab) {
  Sampled run;
  const std::vector<std::pair<int64_t, int64_t>> cases = {{3, 2}, {17, 1}, {40, 4}, {1, 1}, {16, 3}};  // (prompt, n)
  for (size_t i = 0; i < cases.size(); ++i) {
    GenerationParams g;
    g.sampling.temperature = 1.0;
    g.sampling.seed = 5 + i;
    g.max_new_tokens = 9;
    std::vector<int64_t> prompt = random_prompt(cases[i].first, vocab, 30 + i);
    run.prompts[engine.submit({prompt, cases[i].second, g, /*record_routes=*/true})] = prompt;
  }
  run.done = engine.run_until_idle();
  return run;
}

TEST(EngineRoutes, EqualTheRoutesOfAFullForward) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  EngineOptions opt;
  opt.max_seqs = 4;
  opt.max_batched_tokens = 7;  // chunked prefill: the 40-token prompt in 6 chunks
  opt.page_size = 4;
  Engine engine(shared, 0, opt);
  Sampled run = sample_mixed(engine, c.vocab_size);
  ASSERT_EQ(run.done.size(), 11u);
  EXPECT_EQ(routes_mismatches(run.done, run.prompts, [&](int64_t) -> const CausalLM& { return *shared; }), 0);
}

TEST(EngineRoutes, PreemptedAndRecomputedSequencesKeepCorrectRoutes) {
  ModelConfig c = small_like_config();
  auto shared = shared_model(random_model(c));
  EngineOptions opt;
  opt.page_size = 4;
  opt.num_pages = 16;  // 64 token slots for 11 sequences of up to 49 tokens
  Engine engine(shared, 0, opt);
  Sampled run = sample_mixed(engine, c.vocab_size);
  ASSERT_EQ(run.done.size(), 11u);
  EXPECT_GT(engine.stats().preemptions, 0);
  EXPECT_EQ(routes_mismatches(run.done, run.prompts, [&](int64_t) -> const CausalLM& { return *shared; }), 0);
}

TEST(EngineRoutes, WeightSwapRestartsRecordTheNewWeightsRoutes) {
  ModelConfig c = small_like_config();
  auto a = shared_model(random_model(c, {}, 7));
  DeepseekModel b = random_model(c, {}, 8);
  EngineOptions opt;
  Engine engine(a, 1, opt);
  GenerationParams quick, slow;
  quick.sampling.temperature = slow.sampling.temperature = 0;
  quick.max_new_tokens = 2;
  slow.max_new_tokens = 12;
  std::map<uint64_t, std::vector<int64_t>> prompts;
  std::vector<int64_t> p1 = random_prompt(10, c.vocab_size, 61), p2 = random_prompt(25, c.vocab_size, 62);
  prompts[engine.submit({p1, 1, quick, true})] = p1;
  prompts[engine.submit({p2, 3, slow, true})] = p2;
  for (int i = 0; i < 4; ++i) engine.step();  // the quick one is done, the slow ones half-way
  engine.set_weights(2, b.state_dict());
  std::vector<Completion> done = engine.run_until_idle();
  ASSERT_EQ(done.size(), 4u);
  EXPECT_EQ(engine.stats().restarts, 3);
  EXPECT_EQ(routes_mismatches(done, prompts, [&](int64_t v) -> const CausalLM& { return v == 1 ? *a : b; }), 0);
}

TEST(EngineRoutes, NoneUnlessRecordedOrForADenseModel) {
  ModelConfig c = small_like_config();
  Engine plain(shared_model(random_model(c)), 0);
  GenerationParams g;
  g.max_new_tokens = 3;
  plain.submit({random_prompt(5, c.vocab_size, 1), 2, g});
  for (const Completion& comp : plain.run_until_idle()) EXPECT_TRUE(comp.routes.empty());

  Engine dense(std::make_shared<const DenseDecoder>(random_dense(dense_config_json("llama"))), 0);
  dense.submit({random_prompt(5, 40, 1), 2, g, /*record_routes=*/true});
  for (const Completion& comp : dense.run_until_idle()) EXPECT_TRUE(comp.routes.empty());
}

}  // namespace
