// Speculative decoding with the MTP module's drafts (rollout/engine.h): greedy and sampled
// completions (top-k / top-p too), their log-probs and routes are the plain engine's bit for bit,
// with drafts kept and dropped, under preemption and whatever the batch; the sampled tokens follow
// the model's own distributions (chi-square over many seeds); weights without the MTP module stop
// the drafting.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

// Pearson's statistic of `observed` counts against `expected` ones (cells with expected > 0).
double chi_square(const std::vector<double>& observed, const std::vector<double>& expected) {
  double x2 = 0;
  for (size_t i = 0; i < observed.size(); ++i)
    if (expected[i] > 0) x2 += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
  return x2;
}

// Upper 0.1 % points of the chi-square distribution (Wilson–Hilferty), for `dof` degrees of freedom.
double chi_square_limit(int64_t dof) {
  const double k = static_cast<double>(dof), z = 3.09;
  return k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
}

ModelConfig mtp_config() { return tiny_config({{"num_nextn_predict_layers", 1}, {"vocab_size", 16}}); }

std::shared_ptr<const DeepseekModel> mtp_model(uint64_t seed = 7) {
  ModelOptions o;
  o.mtp = true;
  return shared_model(random_model(mtp_config(), o, seed));
}

EngineOptions spec_options(bool speculative) {
  EngineOptions opt;
  opt.speculative = speculative;
  opt.speculative_max_seqs = opt.max_seqs;  // drafts at every batch size
  return opt;
}

std::vector<Request> requests(const GenerationParams& g, int64_t vocab, bool routes) {
  std::vector<Request> out;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{3, 2}, {17, 1}, {9, 4}, {1, 3}, {16, 2}};
  uint64_t seed = 1;
  for (auto [len, n] : shapes) out.push_back({random_prompt(len, vocab, seed++), n, g, routes});
  return out;
}

CompletionMap run_all(std::shared_ptr<const DeepseekModel> m, EngineOptions opt, const std::vector<Request>& reqs,
                      EngineStats* stats = nullptr) {
  Engine engine(m, 0, opt);
  engine.submit(reqs);
  CompletionMap done = by_key(engine.run_until_idle());
  if (stats) *stats = engine.stats();
  EXPECT_EQ(engine.stats().pages_used, 0);
  return done;
}

void expect_same(const CompletionMap& a, const CompletionMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, c] : a) {
    ASSERT_TRUE(b.count(key));
    const Completion& d = b.at(key);
    EXPECT_EQ(c.token_ids, d.token_ids) << key.first << "/" << key.second;
    EXPECT_EQ(c.logprobs, d.logprobs) << key.first << "/" << key.second;
    EXPECT_EQ(c.finish_reason, d.finish_reason);
    EXPECT_EQ(c.routes.tokens, d.routes.tokens);
    EXPECT_EQ(c.routes.experts, d.routes.experts) << key.first << "/" << key.second;
  }
}

// Greedy, sampling and truncated sampling: the completions with drafts are the plain engine's.
TEST(SpeculativeEngine, CompletionsAreThePlainEnginesBitForBit) {
  auto m = mtp_model();
  struct Mode {
    double temperature, top_p;
    int64_t top_k;
  };
  for (const Mode mode : {Mode{0, 1, 0}, Mode{1.0, 1, 0}, Mode{0.6, 0.9, 5}}) {
    GenerationParams g;
    g.sampling = {mode.temperature, mode.top_p, mode.top_k, 42};
    g.max_new_tokens = 12;
    const std::vector<Request> reqs = requests(g, mtp_config().vocab_size, /*routes=*/true);
    EngineStats plain_stats, spec_stats;
    const CompletionMap plain = run_all(m, spec_options(false), reqs, &plain_stats);
    const CompletionMap spec = run_all(m, spec_options(true), reqs, &spec_stats);
    SCOPED_TRACE("temperature " + std::to_string(mode.temperature) + " top_k " + std::to_string(mode.top_k));
    expect_same(plain, spec);
    EXPECT_EQ(plain_stats.draft_tokens, 0);
    EXPECT_GT(spec_stats.draft_tokens, 20);
    EXPECT_GT(spec_stats.accepted_drafts, 0) << "drafts kept and dropped both";
    EXPECT_LT(spec_stats.accepted_drafts, spec_stats.draft_tokens);
    EXPECT_EQ(spec_stats.generated_tokens, plain_stats.generated_tokens);
    EXPECT_LE(spec_stats.steps, plain_stats.steps);
    for (const auto& [key, c] : spec)
      EXPECT_EQ(c.routes.tokens, c.prompt_tokens + static_cast<int64_t>(c.token_ids.size()) - 1);
  }
  Engine spec_engine(m, 0, spec_options(true)), plain_engine(m, 0, spec_options(false));
  EXPECT_EQ(spec_engine.cache_bytes_per_token() * 3, plain_engine.cache_bytes_per_token() * 4)
      << "the MTP module's keys are one more layer of the cache (3 decoder layers)";
}

// Preemption (a cramped cache), chunked prefill, a small token budget, the batch around a request,
// and how many sequences may draft change nothing.
TEST(SpeculativeEngine, SeededResultsDoNotDependOnTheSchedule) {
  auto m = mtp_model();
  GenerationParams g;
  g.sampling.temperature = 1.0;
  g.sampling.seed = 99;
  g.max_new_tokens = 14;
  const std::vector<Request> reqs = requests(g, mtp_config().vocab_size, /*routes=*/true);
  EngineStats roomy_stats, tight_stats;
  const CompletionMap roomy = run_all(m, spec_options(true), reqs, &roomy_stats);
  EXPECT_GT(roomy_stats.accepted_drafts, 0);
  EngineOptions tight = spec_options(true);
  tight.num_pages = 12;  // 48 token slots for 12 sequences of up to 31 tokens
  tight.page_size = 4;
  tight.max_batched_tokens = 13;
  tight.max_seqs = 12;
  expect_same(roomy, run_all(m, tight, reqs, &tight_stats));
  EXPECT_GT(tight_stats.preemptions, 0);
  EXPECT_GT(tight_stats.draft_tokens, 0);
  EngineOptions few = spec_options(true);
  few.speculative_max_seqs = 8;  // drafts only once some sequences are done (12 at first)
  EngineStats few_stats;
  expect_same(roomy, run_all(m, few, reqs, &few_stats));
  EXPECT_GT(few_stats.draft_tokens, 0);
  EXPECT_LT(few_stats.draft_tokens, roomy_stats.draft_tokens);
  const CompletionMap alone = run_all(m, spec_options(true), {reqs[2]});
  for (const auto& [key, c] : alone) {
    const Completion& among = roomy.at({3, key.second});
    EXPECT_EQ(c.token_ids, among.token_ids);
    EXPECT_EQ(c.logprobs, among.logprobs);
  }
}

// The drafts are the MTP module's top-1 over the tokens so far (checked through what the engine
// counts: replaying each completion with mtp_logits over the whole sequence gives which positions
// were drafted and which drafts were kept).
TEST(SpeculativeEngine, DraftsAreTheMtpModulesTopToken) {
  auto m = mtp_model();
  for (double temperature : {0.0, 1.0}) {
    Engine engine(m, 0, spec_options(true));
    GenerationParams g;
    g.sampling.temperature = temperature;
    g.sampling.seed = 5;
    g.max_new_tokens = 24;
    const std::vector<int64_t> prompt = random_prompt(7, mtp_config().vocab_size, 21);
    engine.submit({prompt, 6, g});
    const std::vector<Completion> done = engine.run_until_idle();
    int64_t drafts = 0, kept = 0;
    at::NoGradGuard no_grad;
    for (const Completion& c : done) {
      std::vector<int64_t> ids = prompt;
      ids.insert(ids.end(), c.token_ids.begin(), c.token_ids.end());
      // Entry i of depth 1 predicts ids[i + 2]: the draft of completion token j is entry p + j - 2.
      const at::Tensor top = m->mtp_logits(at::tensor(ids, at::kLong).unsqueeze(0))[0][0].argmax(-1);
      const int64_t p = static_cast<int64_t>(prompt.size()), n = static_cast<int64_t>(c.token_ids.size());
      for (int64_t j = 2; j < n;) {  // token 1 is drawn by the first decode step, which has no draft
        ++drafts;
        const bool hit = top[p + j - 2].item<int64_t>() == c.token_ids[j];
        kept += hit ? 1 : 0;
        j += hit ? 2 : 1;
      }
    }
    EXPECT_EQ(engine.stats().draft_tokens, drafts) << "temperature " << temperature;
    EXPECT_EQ(engine.stats().accepted_drafts, kept) << "temperature " << temperature;
    EXPECT_GT(kept, 0);
  }
}

// Sampled completions (with top-k, and without) against the model's own distributions: for each
// completion and each of its tokens past the first two (those are drawn as without drafts), the
// target distribution given its prefix is summed into expected counts; the tokens drawn are the
// observed ones. The log-prob reported for every token is the target's.
void expect_target_distribution(const SamplingParams& base, bool speculative) {
  auto m = mtp_model(5);
  const ModelConfig c = mtp_config();
  const std::vector<int64_t> prompt = random_prompt(6, c.vocab_size, 17);
  Engine engine(m, 0, spec_options(speculative));
  const int64_t seeds = 48, n = 32, new_tokens = 5;
  for (int64_t s = 0; s < seeds; ++s) {
    GenerationParams g;
    g.sampling = base;
    g.sampling.seed = static_cast<uint64_t>(s);
    g.max_new_tokens = new_tokens;
    engine.submit({prompt, n, g});
  }
  std::vector<Completion> done = engine.run_until_idle();
  ASSERT_EQ(static_cast<int64_t>(done.size()), seeds * n);
  std::vector<double> observed(c.vocab_size, 0), expected(c.vocab_size, 0);
  at::NoGradGuard no_grad;
  double worst = 0;
  for (const Completion& d : done) {
    std::vector<int64_t> ids = prompt;
    ids.insert(ids.end(), d.token_ids.begin(), d.token_ids.end());
    const at::Tensor logits = m->forward(at::tensor(ids, at::kLong).unsqueeze(0))[0];  // [T, V]
    const at::Tensor logp =
        sampling_log_probs(logits.narrow(0, static_cast<int64_t>(prompt.size()) - 1, d.token_ids.size()), base);
    for (size_t t = 0; t < d.token_ids.size(); ++t) {
      const double want = logp[static_cast<int64_t>(t)][d.token_ids[t]].item<double>();
      worst = std::max(worst, std::abs(want - d.logprobs[t]));
      if (t < 2) continue;
      observed[d.token_ids[t]] += 1;
      const at::Tensor p = logp[static_cast<int64_t>(t)].exp().to(at::kDouble).contiguous();
      for (int64_t x = 0; x < c.vocab_size; ++x) expected[x] += p.data_ptr<double>()[x];
    }
  }
  EXPECT_LT(worst, 1e-4) << "the reported log-probs are the target's";
  int64_t cells = 0;
  for (double e : expected) cells += e > 0 ? 1 : 0;
  const double x2 = chi_square(observed, expected);
  EXPECT_LT(x2, chi_square_limit(cells - 1)) << (speculative ? "with" : "without") << " drafts";
  const EngineStats st = engine.stats();
  if (speculative) {
    EXPECT_GT(st.draft_tokens, seeds * n);
    EXPECT_GT(st.accepted_drafts, 0);
    EXPECT_LT(st.accepted_drafts, st.draft_tokens);
  }
}

TEST(SpeculativeEngine, SampledTokensFollowTheTargetDistribution) {
  SamplingParams plain;
  plain.temperature = 0.7;
  expect_target_distribution(plain, /*speculative=*/true);
  expect_target_distribution(plain, /*speculative=*/false);  // the check itself, on the plain sampler
  SamplingParams cut = plain;
  cut.top_k = 6;
  cut.top_p = 0.9;
  expect_target_distribution(cut, /*speculative=*/true);
}

TEST(SpeculativeEngine, WeightsWithoutTheMtpModuleStopTheDrafting) {
  auto m = mtp_model();
  Engine engine(m, 0, spec_options(true));
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 6;
  const std::vector<int64_t> prompt = random_prompt(5, mtp_config().vocab_size, 3);
  engine.submit({prompt, 2, g});
  engine.run_until_idle();
  const int64_t drafts = engine.stats().draft_tokens;
  EXPECT_GT(drafts, 0);
  // The main model's tensors only: the new version decodes without drafts, as the plain engine.
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : m->state_dict())
    if (name.rfind("model.layers.3.", 0) != 0) state[name] = t;
  engine.set_weights(1, state);
  engine.submit({prompt, 2, g});
  std::vector<Completion> after = engine.run_until_idle();
  EXPECT_EQ(engine.stats().draft_tokens, drafts);
  Engine plain(m, 0, spec_options(false));
  plain.submit({prompt, 2, g});
  std::vector<Completion> want = plain.run_until_idle();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].token_ids, want[0].token_ids);
  EXPECT_EQ(after[0].weight_version, 1);
  // With the module's tensors again, the next version drafts again.
  engine.set_weights(2, m->state_dict());
  engine.submit({prompt, 2, g});
  engine.run_until_idle();
  EXPECT_GT(engine.stats().draft_tokens, drafts);
}

}  // namespace
