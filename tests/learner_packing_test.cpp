// Packed sequences (Feed::packed, completion_forward's `pack`, trainer.pack_sequences): several
// sequences back to back in one row, attention inside each, positions restarting.
//  - the model: a packed row's hidden states equal each sequence's own forward — bit for bit in the
//    no-grad fp32 path (batch-invariant kernels), to rounding in fp64 with autograd; DeepSeek
//    (MLA, MoE) and the dense decoders (Llama, Qwen2); wrong use is an InputError;
//  - the learner: the mini-batch gradient of packed micro-batches equals the padded one in fp64
//    (every trainable tensor, the loss terms, the expert loads), with and without routing replay.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "learner/minibatch_loss.h"
#include "learner/train_batch.h"
#include "learner/trainer_options.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;

namespace {

ModelOptions options_of(const std::string& dtype) {
  TrainerOptions o;
  o.dtype = dtype;
  return o.model_options();
}

// Random sequences of the given lengths, ids in [2, vocab).
std::vector<at::Tensor> sequences(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<at::Tensor> out;
  for (int64_t n : lengths) out.push_back(at::randint(2, vocab, {1, n}, gen, at::TensorOptions().dtype(at::kLong)));
  return out;
}

// The packed row's hidden states against each sequence alone: the largest difference.
double packed_vs_alone(const CausalLM& m, const std::vector<at::Tensor>& seqs, bool* bit_equal = nullptr) {
  Feed feed;
  std::vector<at::Tensor> parts;
  for (const at::Tensor& s : seqs) {
    feed.packed.push_back(s.size(1));
    parts.push_back(s);
  }
  const at::Tensor packed = m.hidden(at::cat(parts, 1), feed);  // [1, T, D]
  double worst = 0;
  bool equal = true;
  int64_t start = 0;
  for (const at::Tensor& s : seqs) {
    const at::Tensor alone = m.hidden(s);  // [1, n, D]
    const at::Tensor mine = packed.narrow(1, start, s.size(1));
    worst = std::max(worst, (mine - alone).abs().max().item<double>());
    equal = equal && at::equal(mine, alone);
    start += s.size(1);
  }
  if (bit_equal) *bit_equal = equal;
  return worst;
}

const std::vector<int64_t> kLengths = {5, 1, 9, 3, 12};

TEST(PackedSequences, DeepseekNoGradFp32IsBitIdenticalToEachSequenceAlone) {
  const DeepseekModel m = random_model(tiny_config(), options_of("fp32"));
  at::NoGradGuard no_grad;
  bool equal = false;
  const double worst = packed_vs_alone(m, sequences(kLengths, m.config().vocab_size, 3), &equal);
  EXPECT_TRUE(equal) << "largest difference " << worst;
}

TEST(PackedSequences, DeepseekWithAutogradInFp64MatchesEachSequenceAlone) {
  DeepseekModel m = random_model(tiny_config(), options_of("fp64"));
  m.set_requires_grad(true);
  const double worst = packed_vs_alone(m, sequences(kLengths, m.config().vocab_size, 4));
  EXPECT_LT(worst, 1e-12);
  // The backward does not leak across sequences either: a loss on the second sequence's states
  // gives every parameter the gradient that sequence alone gives.
  Feed feed;
  feed.packed = {4, 6};
  const std::vector<at::Tensor> s = sequences({4, 6}, m.config().vocab_size, 5);
  auto grads = [&](const at::Tensor& loss) {
    loss.backward();
    std::vector<at::Tensor> g;
    for (auto& [name, p] : m.named_trainable()) {
      g.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
      p.mutable_grad() = at::Tensor();
    }
    return g;
  };
  const auto packed = grads(m.hidden(at::cat(s, 1), feed).narrow(1, 4, 6).pow(2).sum());
  const auto alone = grads(m.hidden(s[1]).pow(2).sum());
  double leak = 0, scale = 0;
  for (size_t i = 0; i < packed.size(); ++i) {
    leak = std::max(leak, max_abs_diff(packed[i], alone[i]));
    scale = std::max(scale, alone[i].abs().max().item<double>());
  }
  EXPECT_GT(scale, 1e-6);
  EXPECT_LT(leak, 1e-12);
}

TEST(PackedSequences, DenseDecodersMatchEachSequenceAlone) {
  for (const char* type : {"llama", "qwen2"}) {
    SCOPED_TRACE(type);
    DenseDecoder m64 = random_dense(dense_config_json(type), options_of("fp64"));
    m64.set_requires_grad(true);
    EXPECT_LT(packed_vs_alone(m64, sequences(kLengths, 40, 6)), 1e-12);
    const DenseDecoder m32 = random_dense(dense_config_json(type), options_of("fp32"));
    at::NoGradGuard no_grad;
    EXPECT_LT(packed_vs_alone(m32, sequences(kLengths, 40, 6)), 1e-5);
  }
}

TEST(PackedSequences, WrongUseIsAnInputError) {
  const DeepseekModel m = random_model(tiny_config(), options_of("fp32"));
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(2, 30, {1, 6}, at::TensorOptions().dtype(at::kLong));
  auto message = [&](const at::Tensor& x, std::vector<int64_t> packed, LatentContext* ctx) {
    Feed feed;
    feed.packed = std::move(packed);
    feed.context = ctx;
    try {
      m.hidden(x, feed);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(ids, {2, 3}, nullptr).find("sum to 5 for a row of 6"), std::string::npos);
  EXPECT_NE(message(ids, {6, 0}, nullptr).find("packed sequence 1 has length 0"), std::string::npos);
  EXPECT_NE(message(ids.expand({2, 6}).contiguous(), {3, 3}, nullptr).find("one row, got 2 rows"), std::string::npos);
  LatentCache cache = m.make_cache(1, 16);
  EXPECT_NE(message(ids, {3, 3}, &cache).find("cannot continue a cache"), std::string::npos);
}

// Groups of prompts with completions of varied lengths (some empty) as a TrainBatch with old,
// reference log-probs and advantages set so that clipping and KL act.
TrainBatch scored_batch(const CausalLM& policy, uint64_t seed, at::ScalarType dtype = at::kDouble) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto randint = [&](int64_t lo, int64_t hi) {
    return at::randint(lo, hi, {1}, gen, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
  };
  std::vector<ScoredGroup> groups(3);
  for (size_t i = 0; i < groups.size(); ++i) {
    ScoredGroup& grp = groups[i];
    grp.prompt_id = "p" + std::to_string(i);
    for (int64_t t = 0, n = randint(2, 6); t < n; ++t) grp.prompt_token_ids.push_back(int32_t(randint(2, 60)));
    for (int c = 0; c < 4; ++c) {
      Completion comp;
      for (int64_t t = 0, n = c == 3 ? 0 : randint(1, 12); t < n; ++t) {
        comp.token_ids.push_back(int32_t(randint(2, 60)));
        comp.logprobs.push_back(-2.0f);
      }
      comp.reward = 0.5 * double(randint(0, 3));
      grp.completions.push_back(comp);
    }
  }
  TrainBatch b = make_train_batch(groups, {64, 0}, 1, dtype);
  b.old_logp = completion_logprobs(policy, b, 5) + 0.4 * at::randn(b.mask.sizes(), gen, dtype) * b.mask;
  b.ref_logp = b.old_logp + 0.3 * at::randn(b.mask.sizes(), gen, dtype) * b.mask;
  b.advantages = group_advantages(b.rewards, b.group_size, AdvantageEstimator::kGrpo);
  return b;
}

std::vector<at::Tensor> take_grads(CausalLM& m) {
  std::vector<at::Tensor> out;
  for (auto& [name, p] : m.named_trainable()) {
    out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    p.mutable_grad() = at::Tensor();
  }
  return out;
}

TEST(PackedSequences, PackedMicroBatchGradientEqualsPaddedInFp64) {
  DeepseekModel policy = random_model(tiny_config({{"initializer_range", 0.05}}), options_of("fp64"));
  policy.set_requires_grad(true);
  const TrainBatch b = scored_batch(policy, 11);
  LossSpec spec;
  spec.kl_coef = 0.1;
  spec.entropy_coef = 0.01;
  for (int64_t micro : {int64_t{1}, int64_t{3}, b.rows()}) {
    SCOPED_TRACE("micro-batch " + std::to_string(micro));
    const MiniBatchStats padded = accumulate_minibatch(policy, b, spec, micro, /*pack=*/false);
    const std::vector<at::Tensor> g_padded = take_grads(policy);
    const MiniBatchStats packed = accumulate_minibatch(policy, b, spec, micro, /*pack=*/true);
    const std::vector<at::Tensor> g_packed = take_grads(policy);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < g_packed.size(); ++i) {
      worst = std::max(worst, max_abs_diff(g_packed[i], g_padded[i]));
      scale = std::max(scale, g_padded[i].abs().max().item<double>());
    }
    EXPECT_GT(scale, 1e-4);
    EXPECT_LT(worst, 1e-10);
    EXPECT_NEAR(packed.loss, padded.loss, 1e-12);
    EXPECT_NEAR(packed.kl, padded.kl, 1e-12);
    EXPECT_NEAR(packed.entropy, padded.entropy, 1e-12);
    EXPECT_NEAR(packed.clip_fraction, padded.clip_fraction, 1e-12);
    ASSERT_EQ(packed.expert_load.size(), padded.expert_load.size());
    for (size_t l = 0; l < packed.expert_load.size(); ++l)
      if (padded.expert_load[l].defined()) EXPECT_TRUE(at::equal(packed.expert_load[l], padded.expert_load[l]));
  }
}

// The old log-probs the trainer scores (no grad, fp32 and bf16 kernels) are the padded ones bit
// for bit when packed: what keeps the rollout/learner log-prob agreement exact.
TEST(PackedSequences, PackedScoringIsBitIdenticalToPadded) {
  for (const char* dtype : {"fp32", "bf16"}) {
    SCOPED_TRACE(dtype);
    const DeepseekModel policy = random_model(tiny_config({{"initializer_range", 0.05}}), options_of(dtype));
    const TrainBatch b = scored_batch(policy, 13, at::kFloat);
    at::Tensor routes_padded, routes_packed;
    const at::Tensor padded = completion_logprobs(policy, b, 5, {}, nullptr, &routes_padded, /*pack=*/false);
    const at::Tensor packed = completion_logprobs(policy, b, 5, {}, nullptr, &routes_packed, /*pack=*/true);
    EXPECT_GT(padded.abs().sum().item<double>(), 0);
    EXPECT_TRUE(at::equal(packed, padded)) << "largest difference " << max_abs_diff(packed, padded);
    EXPECT_TRUE(at::equal(routes_packed, routes_padded));
  }
}

TEST(PackedSequences, CompletionForwardPackedKeepsRoutesAndReplaysThem) {
  DeepseekModel policy = random_model(tiny_config({{"initializer_range", 0.05}}), options_of("fp64"));
  const TrainBatch b = scored_batch(policy, 12);
  at::NoGradGuard no_grad;
  const CompletionForward padded = completion_forward(policy, b, false, {}, /*pack=*/false);
  const CompletionForward packed = completion_forward(policy, b, false, {}, /*pack=*/true);
  EXPECT_LT(max_abs_diff(packed.logp, padded.logp), 1e-12);
  EXPECT_LT(max_abs_diff(packed.entropy, padded.entropy), 1e-12);
  ASSERT_TRUE(padded.routes.defined());
  EXPECT_TRUE(at::equal(packed.routes, padded.routes));  // -1 off the routed positions in both
  // Replay of other experts than the routers' own: the same forced routes give the same log-probs.
  TrainBatch replayed = b;
  const int64_t experts = policy.config().n_routed_experts;
  // Each position forced onto experts (t + l + j) mod E, distinct per position, ascending.
  at::Tensor routes = at::empty_like(padded.routes);
  auto r = routes.accessor<int64_t, 4>();
  for (int64_t i = 0; i < routes.size(0); ++i)
    for (int64_t t = 0; t < routes.size(1); ++t)
      for (int64_t l = 0; l < routes.size(2); ++l) {
        std::vector<int64_t> ids;
        for (int64_t j = 0; j < routes.size(3); ++j) ids.push_back((t + l + 2 * j) % experts);
        std::sort(ids.begin(), ids.end());
        for (int64_t j = 0; j < routes.size(3); ++j) r[i][t][l][j] = ids[size_t(j)];
      }
  replayed.routes = routes;
  const CompletionForward padded_r = completion_forward(policy, replayed, false, {}, /*pack=*/false);
  const CompletionForward packed_r = completion_forward(policy, replayed, false, {}, /*pack=*/true);
  EXPECT_LT(max_abs_diff(packed_r.logp, padded_r.logp), 1e-12);
  EXPECT_GT(max_abs_diff(packed_r.logp, padded.logp), 1e-6);  // the replay changed the experts
  EXPECT_TRUE(at::equal(packed_r.routes, padded_r.routes));
}

}  // namespace
