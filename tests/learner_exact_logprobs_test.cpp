// Issue 19's contract: with the same weights, dtype and device, the trainer's log-probs of a
// completion equal, bit for bit, the log-probs the rollout engine reported when it sampled it,
// whatever else was in either batch. The engine samples 32 sequences of mixed lengths (prompts
// prefilled in chunks, decodes batched with whatever else is running, some sequences preempted
// and recomputed); the trainer scores them in other batches (other row orders, sizes and padding,
// next to sequences the engine never saw).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "learner/scored_group.h"
#include "learner/train_batch.h"
#include "rollout/engine.h"
#include "rollout_test_util.h"

namespace grpo {
namespace {

using grpo::testing::random_model;
using grpo::testing::random_prompt;
using grpo::testing::small_like_config;

// 8 prompts of 3..45 tokens, 4 samples each, 6..40 new tokens: 32 sequences of mixed lengths.
std::vector<ScoredGroup> sample_groups(const std::shared_ptr<const DeepseekModel>& model,
                                       const rollout::SamplingParams& sampling, rollout::EngineOptions options,
                                       rollout::EngineStats* stats) {
  rollout::Engine engine(model, 0, options);
  const int64_t vocab = model->spec().vocab_size;
  std::vector<ScoredGroup> groups(8);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) {
    rollout::Request r;
    r.prompt = random_prompt(3 + 6 * i, vocab, 100 + i);
    r.n = 4;
    r.params.sampling = sampling;
    r.params.sampling.seed = 11 + i;
    r.params.max_new_tokens = 6 + (i * 5) % 35;
    r.record_routes = true;
    groups[i].prompt_id = "p" + std::to_string(i);
    groups[i].prompt_token_ids.assign(r.prompt.begin(), r.prompt.end());
    groups[i].completions.resize(4);
    ids.push_back(engine.submit(r));
  }
  for (rollout::Completion& c : engine.run_until_idle()) {
    const size_t g = std::find(ids.begin(), ids.end(), c.request_id) - ids.begin();
    Completion& out = groups.at(g).completions.at(c.sample_index);
    out.token_ids.assign(c.token_ids.begin(), c.token_ids.end());
    out.logprobs = c.logprobs;
    out.routes = c.routes;
    out.reward = static_cast<double>(c.sample_index % 2);
  }
  *stats = engine.stats();
  return groups;
}

// Every completion token's trainer log-prob (completion_logprobs over `groups` in the given
// order, `rows` rows per forward) equals the rollout's; at least `min_tokens` are compared.
void expect_exact(const CausalLM& model, const std::vector<ScoredGroup>& groups, int64_t rows,
                  const rollout::SamplingParams& sampling, int64_t min_tokens) {
  const TrainBatch b = make_train_batch(groups, {model.spec().vocab_size, 0}, 0, at::kFloat);
  const at::Tensor old = completion_logprobs(model, b, rows, sampling);  // [B, T-1]
  int64_t tokens = 0, differ = 0;
  double worst = 0;
  for (int64_t r = 0; r < b.rows(); ++r)
    for (int64_t t = 0; t < b.mask.size(1); ++t) {
      if (b.mask[r][t].item<float>() == 0) continue;
      const float mine = old[r][t].item<float>(), theirs = b.rollout_logp[r][t].item<float>();
      ++tokens;
      if (mine != theirs) ++differ, worst = std::max(worst, std::abs(double(mine) - theirs));
    }
  EXPECT_GE(tokens, min_tokens);
  EXPECT_EQ(differ, 0) << "of " << tokens << " tokens; largest |difference| " << worst;
}

void check_sampling(const rollout::SamplingParams& sampling) {
  auto model = std::make_shared<const DeepseekModel>(random_model(small_like_config(), {}, 5));
  rollout::EngineOptions options;
  options.page_size = 4;
  options.num_pages = 90;  // too few for all 32 at full length: some are preempted and recomputed
  options.max_seqs = 32;
  options.max_batched_tokens = 40;  // prompts prefilled in chunks beside the decodes
  rollout::EngineStats stats;
  std::vector<ScoredGroup> groups = sample_groups(model, sampling, options, &stats);
  EXPECT_GT(stats.preemptions, 0);
  // Scored in other batches: all 32 rows, 5 at a time (rows sorted by length, so each forward
  // mixes other sequences than the engine's steps did); each group alone; and the groups in
  // reverse order next to unrelated sequences, 7 rows at a time.
  expect_exact(*model, groups, 5, sampling, 500);
  for (const ScoredGroup& g : groups) expect_exact(*model, {g}, 3, sampling, 20);
  std::vector<ScoredGroup> mixed(groups.rbegin(), groups.rend());
  ScoredGroup other = groups[0];
  for (Completion& c : other.completions) {
    c.token_ids.resize(std::min<size_t>(c.token_ids.size(), 3));
    c.logprobs.resize(c.token_ids.size());
  }
  other.prompt_token_ids.insert(other.prompt_token_ids.begin(), {5, 6, 7, 8, 9});
  mixed.insert(mixed.begin() + 3, other);
  const TrainBatch all = make_train_batch(mixed, {model->spec().vocab_size, 0}, 0, at::kFloat);
  const at::Tensor old = completion_logprobs(*model, all, 7, sampling);
  const at::Tensor diff = (old - all.rollout_logp).abs() * all.mask;  // row 3's group is not the engine's
  for (int64_t g = 0; g < static_cast<int64_t>(mixed.size()); ++g) {
    if (g == 3) continue;
    EXPECT_EQ(diff.narrow(0, g * 4, 4).max().item<float>(), 0.0F) << "group " << mixed[g].prompt_id;
  }
  // The comparison is sharp: the training forward (grad mode: batched ATen products, the naive
  // attention form) computes the same function in another order and misses the rollout's bits.
  const TrainBatch b = make_train_batch(groups, {model->spec().vocab_size, 0}, 0, at::kFloat);
  at::AutoGradMode grad(true);
  const at::Tensor trained = completion_forward(*model, b, false, sampling).logp.detach();
  const at::Tensor off = (trained - b.rollout_logp).abs() * b.mask;
  EXPECT_GT((off > 0).sum().item<int64_t>(), 0);
  EXPECT_LT(off.max().item<float>(), 1e-4F);
}

TEST(ExactLogprobs, EngineAndTrainerAgreeBitForBitAtTemperatureOne) { check_sampling({1.0, 1.0, 0, 0}); }

TEST(ExactLogprobs, EngineAndTrainerAgreeBitForBitWithTopPTopKAndTemperature) { check_sampling({0.8, 0.9, 40, 0}); }

// FP8 weights (bf16 compute): the FP8 engine against a trainer holding the same FP8 weights, the
// trainer replaying the rollout's routes (R3) — the same bits again.
TEST(ExactLogprobs, Fp8EngineAndFp8TrainerAgreeBitForBitWithRoutingReplay) {
  const ModelConfig c = small_like_config();
  const DeepseekModel dense = random_model(c, {}, 5);
  auto fp8 = [&] {
    auto m = std::make_shared<DeepseekModel>(c, ModelOptions::for_dtype("fp8"));
    m->load_state(dense.state_dict(), "dense");
    return m;
  };
  const std::shared_ptr<const DeepseekModel> engine_model = fp8(), trainer_model = fp8();
  rollout::EngineOptions options;
  options.max_seqs = 32;
  options.max_batched_tokens = 40;
  rollout::EngineStats stats;
  const rollout::SamplingParams sampling{1.0, 1.0, 0, 0};
  const std::vector<ScoredGroup> groups = sample_groups(engine_model, sampling, options, &stats);
  TrainBatch b = make_train_batch(groups, {c.vocab_size, 0}, 0, at::kFloat);
  const LmSpec spec = trainer_model->spec();
  b.routes = replay_routes(groups, {spec.moe_layers, spec.num_experts_per_tok, spec.n_routed_experts}, b.mask.size(1));
  const at::Tensor old = completion_logprobs(*trainer_model, b, 5, sampling);
  EXPECT_GT(b.tokens(), 500);
  EXPECT_EQ(((old - b.rollout_logp).abs() * b.mask).max().item<float>(), 0.0F);
}

// The trainer scores the distribution that was sampled: with top-p/top-k the log-probs are those
// of the renormalised kept set, not of the full softmax (which the trainer used before).
TEST(ExactLogprobs, TruncatedSamplingIsScoredUnderTheKeptSet) {
  auto model = std::make_shared<const DeepseekModel>(random_model(small_like_config(), {}, 5));
  rollout::EngineStats stats;
  const rollout::SamplingParams sampling{0.8, 0.5, 20, 0};
  std::vector<ScoredGroup> groups = sample_groups(model, sampling, {}, &stats);
  const TrainBatch b = make_train_batch(groups, {model->spec().vocab_size, 0}, 0, at::kFloat);
  const at::Tensor kept = completion_logprobs(*model, b, 8, sampling);
  const at::Tensor full = completion_logprobs(*model, b, 8, {0.8, 1.0, 0, 0});
  EXPECT_EQ(((kept - b.rollout_logp).abs() * b.mask).max().item<float>(), 0.0F);
  // Renormalising over fewer tokens raises every log-prob.
  EXPECT_GT(((kept - full) * b.mask).min().item<float>(), -1e-6F);
  EXPECT_GT(((kept - full) * b.mask).sum().item<float>() / b.tokens(), 0.05F);
}

}  // namespace
}  // namespace grpo
