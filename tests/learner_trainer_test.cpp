// The GRPO trainer on a tiny DeepSeek-V3 (MoE, noaux_tc gating): micro-batch accumulation equals
// the whole mini-batch's gradient (fp64, every aggregation mode), the loss and the old log-probs
// equal grpo.h / DeepseekModel::logprobs on hand-assembled tensors, a rewarded completion gains
// probability, KL to the reference (and its refresh), the expert-bias update, checkpoint round
// trips (bit-identical resume, a failed save leaves the previous checkpoint), config errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "learner/minibatch_loss.h"
#include "learner/off_policy.h"
#include "learner/train_batch.h"
#include "learner/trainer.h"
#include "learner_ep_testutil.h"
#include "learner_options_testutil.h"
#include "model/pretrained.h"
#include "model_test_util.h"
#include "tests/file_testutil.h"

using namespace grpo;
using namespace grpo::testing;
namespace fs = std::filesystem;

namespace {

ModelConfig small_config() { return tiny_config({{"initializer_range", 0.05}}); }

std::shared_ptr<DeepseekModel> make_policy(const std::string& dtype, uint64_t seed = 7) {
  TrainerOptions o;
  o.dtype = dtype;
  return std::make_shared<DeepseekModel>(random_model(small_config(), o.model_options(), seed));
}

// n_groups prompts of G completions each, lengths varying (one completion of each group may be
// empty), rewards in {0, 0.5, 1}, rollout log-probs drawn near -2.
std::vector<ScoredGroup> make_groups(int n_groups, int g, uint64_t seed, int vocab = 64) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto randint = [&](int64_t lo, int64_t hi) {
    return at::randint(lo, hi, {1}, gen, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
  };
  std::vector<ScoredGroup> groups(n_groups);
  for (int i = 0; i < n_groups; ++i) {
    ScoredGroup& grp = groups[i];
    grp.prompt_id = "p" + std::to_string(i);
    for (int64_t t = 0, n = randint(2, 6); t < n; ++t) grp.prompt_token_ids.push_back(int32_t(randint(2, vocab)));
    for (int c = 0; c < g; ++c) {
      Completion comp;
      for (int64_t t = 0, n = randint(1, 9); t < n; ++t) {
        comp.token_ids.push_back(int32_t(randint(2, vocab)));
        comp.logprobs.push_back(float(-2.0 - 0.5 * at::rand({1}, gen).item<double>()));
      }
      comp.reward = 0.5 * double(randint(0, 3));
      grp.completions.push_back(comp);
    }
  }
  return groups;
}

// Per sequence: DeepseekModel::logprobs of prompt + completion at the completion positions,
// assembled into [B, T-1] with its mask (T the longest sequence).
struct HandBatch {
  at::Tensor logp, mask, rollout;
};
HandBatch hand_logprobs(const DeepseekModel& m, const std::vector<ScoredGroup>& groups) {
  at::NoGradGuard no_grad;
  int64_t longest = 0, rows = 0;
  for (const auto& grp : groups)
    for (const auto& c : grp.completions) {
      longest = std::max<int64_t>(longest, int64_t(grp.prompt_token_ids.size() + c.token_ids.size()));
      ++rows;
    }
  const at::ScalarType dt = m.options().compute_dtype == at::kDouble ? at::kDouble : at::kFloat;
  HandBatch h{at::zeros({rows, longest - 1}, dt), at::zeros({rows, longest - 1}, dt),
              at::zeros({rows, longest - 1}, dt)};
  int64_t r = 0;
  for (const auto& grp : groups)
    for (const auto& c : grp.completions) {
      std::vector<int64_t> ids(grp.prompt_token_ids.begin(), grp.prompt_token_ids.end());
      ids.insert(ids.end(), c.token_ids.begin(), c.token_ids.end());
      const int64_t p = int64_t(grp.prompt_token_ids.size()), n = int64_t(c.token_ids.size());
      if (n > 0) {
        at::Tensor lp = m.logprobs(at::tensor(ids, at::kLong).unsqueeze(0))[0];  // [L-1]
        h.logp[r].narrow(0, p - 1, n).copy_(lp.narrow(0, p - 1, n));
        h.mask[r].narrow(0, p - 1, n).fill_(1.0);
        h.rollout[r].narrow(0, p - 1, n).copy_(at::tensor(c.logprobs, at::kFloat));
      }
      ++r;
    }
  return h;
}

std::vector<at::Tensor> grads(DeepseekModel& m) {
  std::vector<at::Tensor> out;
  for (auto& [name, p] : m.named_trainable()) out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return out;
}

void zero_grads(DeepseekModel& m) {
  for (auto& [name, p] : m.named_trainable()) p.mutable_grad() = at::Tensor();
}

std::map<std::string, at::Tensor> weights(CausalLM& m) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : m.named_parameters()) out[name] = t->detach().clone();
  return out;
}

double sum_logprob(const DeepseekModel& m, const ScoredGroup& grp, size_t c) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> ids(grp.prompt_token_ids.begin(), grp.prompt_token_ids.end());
  ids.insert(ids.end(), grp.completions[c].token_ids.begin(), grp.completions[c].token_ids.end());
  const int64_t p = int64_t(grp.prompt_token_ids.size());
  at::Tensor lp = m.logprobs(at::tensor(ids, at::kLong).unsqueeze(0))[0];
  return lp.narrow(0, p - 1, lp.size(0) - (p - 1)).sum().item<double>();
}

TEST(TrainBatch, MicroBatchAccumulationEqualsWholeMiniBatchGradient) {
  auto policy = make_policy("fp64");
  policy->set_requires_grad(true);
  const auto groups = make_groups(3, 4, 11);
  TrainBatch b = make_train_batch(groups, {64, 0}, 1, at::kDouble);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  // Old and reference log-probs away from the current ones so that clipping, dual clip, TIS and
  // KL all act.
  b.old_logp = completion_logprobs(*policy, b, 5) + 0.4 * at::randn(b.mask.sizes(), gen, at::kDouble) * b.mask;
  b.ref_logp = b.old_logp + 0.3 * at::randn(b.mask.sizes(), gen, at::kDouble) * b.mask;
  b.advantages = group_advantages(b.rewards, b.group_size, AdvantageEstimator::kGrpo);
  for (const char* mode : {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"}) {
    SCOPED_TRACE(mode);
    LossSpec spec;
    spec.policy.aggregation = parse_loss_aggregation(mode);
    spec.policy.norm_length = 8;
    spec.policy.tis_cap = 1.5;
    spec.kl_coef = 0.1;
    spec.entropy_coef = 0.01;
    zero_grads(*policy);
    MiniBatchStats whole = accumulate_minibatch(*policy, b, spec, b.rows(), /*pack=*/false);
    const auto g_whole = grads(*policy);
    EXPECT_GT(whole.clip_fraction, 0.0);
    for (int64_t micro : {1, 3, 5}) {
      zero_grads(*policy);
      MiniBatchStats parts = accumulate_minibatch(*policy, b, spec, micro, /*pack=*/false);
      const auto g = grads(*policy);
      double worst = 0, scale = 0;
      for (size_t i = 0; i < g.size(); ++i) {
        worst = std::max(worst, max_abs_diff(g[i], g_whole[i]));
        scale = std::max(scale, g_whole[i].abs().max().item<double>());
      }
      EXPECT_GT(scale, 1e-4);
      EXPECT_LT(worst, 1e-10) << "micro-batch " << micro;
      EXPECT_NEAR(parts.loss, whole.loss, 1e-12);
      EXPECT_NEAR(parts.kl, whole.kl, 1e-12);
      EXPECT_NEAR(parts.entropy, whole.entropy, 1e-12);
      EXPECT_NEAR(parts.clip_fraction, whole.clip_fraction, 1e-12);
    }
  }
}

// With the off-policy corrections on (GSPO, the three keep-masks, the unbiased KL) the micro-batches'
// gradients still sum to the whole mini-batch's, and the KL term is unbiased_kl's.
TEST(TrainBatch, OffPolicyCorrectionsKeepMicroBatchAccumulationExact) {
  auto policy = make_policy("fp64");
  policy->set_requires_grad(true);
  const auto groups = make_groups(3, 4, 11);
  TrainBatch b = make_train_batch(groups, {64, 0}, 1, at::kDouble);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const at::Tensor current = completion_logprobs(*policy, b, 5);
  b.old_logp = current + 0.3 * at::randn(b.mask.sizes(), gen, at::kDouble) * b.mask;
  b.rollout_logp = b.old_logp + 0.2 * at::randn(b.mask.sizes(), gen, at::kDouble) * b.mask;
  b.ref_logp = b.old_logp + 0.3 * at::randn(b.mask.sizes(), gen, at::kDouble) * b.mask;
  b.advantages = group_advantages(b.rewards, b.group_size, AdvantageEstimator::kGrpo);
  for (const char* loss : {"ppo", "gspo"}) {
    SCOPED_TRACE(loss);
    LossSpec spec;
    spec.policy.aggregation = LossAggregation::kSeqMeanTokenMean;
    spec.off_policy.policy_loss = parse_policy_loss_kind(loss);
    spec.off_policy.gspo_clip_low = spec.off_policy.gspo_clip_high = 0.03;
    spec.off_policy.mis = MisLevel::kToken;
    spec.off_policy.mis_low = 0.8;
    spec.off_policy.mis_high = 1.25;
    spec.off_policy.icepop_beta = 1.5;
    spec.off_policy.offpolicy_mask_delta = 0.02;
    spec.off_policy.kl_unbiased = true;
    spec.kl_coef = 0.1;
    const at::Tensor keep = off_policy_keep(spec.off_policy, b.old_logp, b.rollout_logp, b.advantages, b.mask);
    ASSERT_GT(keep.sum().item<double>(), 0);
    ASSERT_LT(keep.sum().item<double>(), b.tokens());
    zero_grads(*policy);
    MiniBatchStats whole = accumulate_minibatch(*policy, b, spec, b.rows(), /*pack=*/false);
    const auto g_whole = grads(*policy);
    EXPECT_GT(whole.clip_fraction, 0.0);
    const at::Tensor kl = unbiased_kl(current, b.old_logp, b.ref_logp) * b.mask;
    EXPECT_NEAR(whole.kl, kl.sum().item<double>() / b.tokens(), 1e-12);
    for (int64_t micro : {1, 5}) {
      zero_grads(*policy);
      MiniBatchStats parts = accumulate_minibatch(*policy, b, spec, micro, /*pack=*/false);
      const auto g = grads(*policy);
      double worst = 0;
      for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, max_abs_diff(g[i], g_whole[i]));
      EXPECT_LT(worst, 1e-10) << "micro-batch " << micro;
      EXPECT_NEAR(parts.loss, whole.loss, 1e-12);
    }
  }
}

TEST(TrainBatch, OldLogprobsEqualModelLogprobsAtCompletionPositions) {
  auto policy = make_policy("fp64");
  const auto groups = make_groups(2, 3, 12);
  TrainBatch b = make_train_batch(groups, {64, 0}, 1, at::kDouble);
  HandBatch h = hand_logprobs(*policy, groups);
  EXPECT_TRUE(at::equal(b.mask, h.mask));
  EXPECT_LT(max_abs_diff(b.rollout_logp, h.rollout), 1e-7);
  for (int64_t rows_per_forward : {1, 4, 6}) {
    at::Tensor old = completion_logprobs(*policy, b, rows_per_forward);
    EXPECT_LT(max_abs_diff(old, h.logp), 1e-12) << rows_per_forward;
  }
  // At a sampling temperature: log_softmax(logits / T) of the full forward, at the same positions.
  at::NoGradGuard no_grad;
  at::Tensor logits = policy->forward(b.ids.narrow(1, 0, b.ids.size(1) - 1));  // [B, T-1, V]
  at::Tensor want = (logits / 0.7).log_softmax(-1).gather(-1, b.ids.narrow(1, 1, b.ids.size(1) - 1).unsqueeze(-1));
  at::Tensor got = completion_logprobs(*policy, b, 4, {0.7, 1.0, 0, 0});
  EXPECT_LT(max_abs_diff(got, want.squeeze(-1) * b.mask), 1e-12);
  EXPECT_GT(max_abs_diff(got, h.logp), 1e-3);
}

TEST(Trainer, FirstMiniBatchLossEqualsPolicyLossOnHandAssembledTensors) {
  for (const char* mode : {"token-mean", "seq-mean-token-mean"}) {
    SCOPED_TRACE(mode);
    auto policy = make_policy("fp64");
    auto groups = make_groups(3, 4, 13);
    HandBatch h = hand_logprobs(*policy, groups);
    TrainerOptions o;
    o.dtype = "fp64";
    o.micro_batch_size = 2;
    o.policy.aggregation = parse_loss_aggregation(mode);
    o.policy.tis_cap = 1.2;  // the rollout log-probs (random) make the TIS weights differ per token
    std::vector<double> rewards;
    for (const auto& g : groups)
      for (const auto& c : g.completions) rewards.push_back(c.reward);
    at::Tensor adv = group_advantages(at::tensor(rewards, at::kDouble), 4, AdvantageEstimator::kGrpo);
    const double expected = policy_loss(h.logp, h.logp, adv, h.mask, o.policy, h.rollout).loss.item<double>();

    Trainer trainer(policy, o);
    TrainStats s = trainer.step(groups);
    EXPECT_NEAR(s.loss, expected, 1e-12);
    EXPECT_NEAR(s.policy_loss, expected, 1e-12);
    EXPECT_EQ(s.sequences, 12);
    EXPECT_EQ(s.tokens, h.mask.sum().item<double>());
    EXPECT_EQ(s.optimizer_steps, 1);
    EXPECT_EQ(s.clip_fraction, 0.0);  // ratio 1 before the first update
    EXPECT_GT(s.grad_norm_max, 0.0);
    EXPECT_EQ(trainer.steps_done(), 1);
  }
}

TEST(Trainer, MismatchMetricsOfKnownRolloutOffsets) {
  auto policy = make_policy("fp64");
  auto groups = make_groups(2, 3, 14);
  for (auto& g : groups) {  // advantages +, -, - in each group
    g.completions[0].reward = 1.0;
    g.completions[1].reward = 0.0;
    g.completions[2].reward = 0.0;
  }
  HandBatch h = hand_logprobs(*policy, groups);
  // The rollout's log-probs are the trainer's minus an offset by token position (-0.25, 0.5, -0.75,
  // -0.25, ...), so Δ = old_logp − rollout_logp = offset. With tis_cap 1.5 (ln 1.5 = 0.41) 0.5 is
  // truncated; MIS token [0.5, 2] (ln: ±0.69) masks -0.75; IcePop β = 1.5 masks 0.5 and -0.75; the
  // off-policy mask (δ 0.1) drops negative-advantage sequences whose mean of -offset is > 0.1
  // (lengths 1, 3, 4, ...: 0.25, 0.17, 0.19; not 2: -0.125).
  const double offsets[3] = {-0.25, 0.5, -0.75};
  double n = 0, abs_sum = 0, k3_sum = 0, truncated = 0, mis = 0, icepop = 0, offpolicy = 0;
  int64_t r = 0;
  for (auto& g : groups)
    for (size_t ci = 0; ci < g.completions.size(); ++ci, ++r) {
      Completion& c = g.completions[ci];
      const int64_t p = int64_t(g.prompt_token_ids.size());
      double minus_offset_sum = 0;
      for (size_t i = 0; i < c.logprobs.size(); ++i) {
        const double off = offsets[i % 3];
        c.logprobs[i] = float(h.logp[r][p - 1 + int64_t(i)].item<double>() - off);
        n += 1;
        abs_sum += std::abs(off);
        k3_sum += std::exp(off) - 1 - off;
        truncated += off == 0.5 ? 1 : 0;
        mis += off == -0.75 ? 1 : 0;
        icepop += off != -0.25 ? 1 : 0;
        minus_offset_sum -= off;
      }
      const double len = double(c.logprobs.size());
      if (ci > 0 && minus_offset_sum / len > 0.1) offpolicy += len;
    }
  ASSERT_GT(offpolicy, 0);
  ASSERT_LT(offpolicy, n);
  ASSERT_GT(mis, 0);
  TrainerOptions o;
  o.dtype = "fp64";
  o.policy.tis_cap = 1.5;
  o.off_policy.mis = MisLevel::kToken;
  o.off_policy.icepop_beta = 1.5;
  o.off_policy.offpolicy_mask_delta = 0.1;
  Trainer trainer(policy, o);
  const std::map<std::string, double> m = trainer.step(groups).mismatch;
  EXPECT_NEAR(m.at("logp_abs_mean"), abs_sum / n, 1e-6);
  EXPECT_NEAR(m.at("logp_abs_max"), 0.75, 1e-6);
  EXPECT_NEAR(m.at("kl_k3"), k3_sum / n, 1e-6);
  EXPECT_DOUBLE_EQ(m.at("tis_truncated"), truncated / n);
  EXPECT_DOUBLE_EQ(m.at("mis_masked"), mis / n);
  EXPECT_DOUBLE_EQ(m.at("icepop_masked"), icepop / n);
  EXPECT_DOUBLE_EQ(m.at("offpolicy_masked"), offpolicy / n);
}

// The policy term with GSPO or PPO, each times the keep-masks of MIS, IcePop and the off-policy
// sequence mask, is the pure functions' value on hand-assembled tensors.
TEST(Trainer, OffPolicyCorrectionsGiveThePureFunctionsLoss) {
  for (const char* loss : {"ppo", "gspo"}) {
    SCOPED_TRACE(loss);
    auto policy = make_policy("fp64");
    auto groups = make_groups(3, 4, 13);
    HandBatch h = hand_logprobs(*policy, groups);
    int64_t r = 0;
    for (auto& g : groups)  // rollout log-probs within about ±0.4 of the trainer's
      for (auto& c : g.completions) {
        const int64_t p = int64_t(g.prompt_token_ids.size());
        for (size_t i = 0; i < c.logprobs.size(); ++i)
          c.logprobs[i] = float(h.logp[r][p - 1 + int64_t(i)].item<double>() + 0.4 * std::sin(double(7 * r + 3 * i)));
        ++r;
      }
    h = hand_logprobs(*policy, groups);
    TrainerOptions o;
    o.dtype = "fp64";
    o.micro_batch_size = 3;
    o.off_policy.policy_loss = parse_policy_loss_kind(loss);
    o.policy.aggregation = LossAggregation::kSeqMeanTokenMean;
    o.off_policy.mis = MisLevel::kGeometric;
    o.off_policy.mis_low = 0.9;
    o.off_policy.mis_high = 1.1;
    o.off_policy.icepop_beta = 1.3;
    o.off_policy.offpolicy_mask_delta = 0.05;
    std::vector<double> rewards;
    for (const auto& g : groups)
      for (const auto& c : g.completions) rewards.push_back(c.reward);
    const at::Tensor adv = group_advantages(at::tensor(rewards, at::kDouble), 4, AdvantageEstimator::kGrpo);
    const at::Tensor keep = off_policy_keep(o.off_policy, h.logp, h.rollout, adv, h.mask);
    const double kept = keep.sum().item<double>(), tokens = h.mask.sum().item<double>();
    ASSERT_GT(kept, 0);
    ASSERT_LT(kept, tokens);
    auto expected_loss = [&](const at::Tensor& k) {
      return o.off_policy.policy_loss == PolicyLossKind::kGspo
                 ? gspo_loss(h.logp, h.logp, adv, h.mask, o.off_policy.gspo_clip_low, o.off_policy.gspo_clip_high, k)
                       .loss.item<double>()
                 : policy_loss(h.logp, h.logp, adv, h.mask, o.policy, h.rollout, k).loss.item<double>();
    };
    const double expected = expected_loss(keep);
    EXPECT_GT(std::abs(expected - expected_loss(h.mask)), 1e-6);  // the masks change the loss
    Trainer trainer(policy, o);
    const TrainStats s = trainer.step(groups);
    EXPECT_NEAR(s.policy_loss, expected, 1e-12);
    const at::Tensor mis = mis_keep(h.logp, h.rollout, h.mask, MisLevel::kGeometric, 0.9, 1.1);
    EXPECT_NEAR(s.mismatch.at("mis_masked"), 1.0 - mis.sum().item<double>() / tokens, 1e-12);
  }
}

TEST(Trainer, RewardedCompletionGainsProbability) {
  for (const char* dtype : {"fp32", "bf16"}) {  // bf16: bf16 compute on fp32 master weights
    SCOPED_TRACE(dtype);
    auto policy = make_policy(dtype);
    auto groups = make_groups(2, 2, 15);
    for (auto& g : groups) {
      g.completions[0].reward = 1.0;
      g.completions[1].reward = 0.0;
    }
    std::vector<double> good0, bad0;
    for (const auto& g : groups) {
      good0.push_back(sum_logprob(*policy, g, 0));
      bad0.push_back(sum_logprob(*policy, g, 1));
    }
    TrainerOptions o;
    o.dtype = dtype;
    o.lr = 1e-3;
    o.mini_batches = 2;
    o.micro_batch_size = 1;
    Trainer trainer(policy, o);
    for (int s = 0; s < 4; ++s) trainer.step(groups);
    for (size_t i = 0; i < groups.size(); ++i) {
      EXPECT_GT(sum_logprob(*policy, groups[i], 0), good0[i] + 0.1) << "group " << i;
      EXPECT_LT(sum_logprob(*policy, groups[i], 1), bad0[i] - 0.1) << "group " << i;
    }
    for (auto& [name, p] : policy->named_trainable()) EXPECT_EQ(p.scalar_type(), at::kFloat);
  }
}

TEST(Trainer, PpoEpochsAndMiniBatchesMakeOptimizerStepsAndClip) {
  auto policy = make_policy("fp32");
  const auto groups = make_groups(3, 4, 24);
  TrainerOptions o;
  o.lr = 5e-3;  // large, so that the later mini-batches leave the trust region
  o.ppo_epochs = 3;
  o.mini_batches = 2;
  o.micro_batch_size = 4;
  o.max_grad_norm = 0.5;
  Trainer trainer(policy, o);
  TrainStats s = trainer.step(groups);
  EXPECT_EQ(s.optimizer_steps, 6);
  EXPECT_GT(s.clip_fraction, 0.0);
  EXPECT_GT(s.approx_kl, 0.0);
  EXPECT_GT(s.grad_norm_max, 0.5);  // reported before clipping
  EXPECT_GE(s.grad_norm_max, s.grad_norm_mean);
  EXPECT_GT(s.entropy, 0.0);
  EXPECT_LT(s.entropy, std::log(64.0) + 1e-9);
  EXPECT_EQ(s.lr, 5e-3);
  EXPECT_EQ(s.skipped_steps, 0);
  const auto m = s.as_map();
  for (const char* key :
       {"loss", "policy_loss", "kl", "entropy", "clip_fraction", "dual_clip_fraction", "approx_kl", "grad_norm_mean",
        "grad_norm_max", "lr", "tokens", "sequences", "optimizer_steps", "seconds", "expert_load_imbalance"})
    EXPECT_EQ(m.count(key), 1u) << key;
  EXPECT_EQ(s.mismatch.size(), 3u);  // logp_abs_mean, logp_abs_max, kl_k3: no correction is on
  for (const char* key : {"logp_abs_mean", "logp_abs_max", "kl_k3"}) EXPECT_EQ(s.mismatch.count(key), 1u) << key;
  EXPECT_EQ(m.at("optimizer_steps"), 6);
  EXPECT_EQ(m.at("clip_fraction"), s.clip_fraction);
}

TEST(Trainer, KlToReferenceStartsAtZeroGrowsAndResetsOnRefresh) {
  auto policy = make_policy("fp32");
  const auto groups = make_groups(2, 4, 16);
  TrainerOptions o;
  o.lr = 3e-3;
  o.kl_coef = 0.1;
  o.ref_refresh_steps = 3;
  Trainer trainer(policy, o);
  std::vector<double> kl;
  for (int s = 0; s < 4; ++s) kl.push_back(trainer.step(groups).kl);  // measured before each update
  EXPECT_NEAR(kl[0], 0.0, 1e-7);
  EXPECT_GT(kl[1], 1e-4);
  EXPECT_GT(kl[2], kl[1]);
  EXPECT_NEAR(kl[3], 0.0, 1e-7);  // the reference became the policy after step 3

  // KL in the reward: the k3 estimate is >= 0, so the shaped rewards fall below the raw ones.
  auto policy2 = make_policy("fp32");
  o.kl_in_reward = true;
  o.ref_refresh_steps = 0;
  Trainer shaped(policy2, o);
  TrainStats first = shaped.step(groups), second = shaped.step(groups);
  EXPECT_NEAR(first.kl, 0.0, 1e-7);
  EXPECT_GT(second.kl, 1e-4);
  EXPECT_LT(second.reward_mean, first.reward_mean - 1e-6);
}

TEST(Trainer, ExpertBiasUpdateOnlyWithGamma) {
  const auto groups = make_groups(2, 4, 17);
  auto biases = [](DeepseekModel& m) {
    std::map<std::string, at::Tensor> out;
    for (auto& [name, t] : m.named_parameters())
      if (name.find("e_score_correction_bias") != std::string::npos) out[name] = t->clone();
    return out;
  };
  for (double gamma : {0.0, 0.01}) {
    SCOPED_TRACE(gamma);
    auto policy = make_policy("fp32");
    TrainerOptions o;
    o.lr = 0;  // only the bias moves
    o.bias_update_gamma = gamma;
    const auto before = biases(*policy);
    const auto w_before = weights(*policy);
    Trainer trainer(policy, o);
    TrainStats s = trainer.step(groups);
    EXPECT_GT(s.expert_load_imbalance, 1.0);
    const auto after = biases(*policy);
    ASSERT_EQ(after.size(), 2u);  // layers 1 and 2 are MoE
    bool moved = false;
    for (const auto& [name, b] : before) {
      at::Tensor d = (after.at(name) - b).abs();
      moved |= d.max().item<double>() > 0;
      // each entry moves by 0 or gamma (sign of mean load - load)
      EXPECT_TRUE(at::logical_or(d < 1e-7, (d - gamma).abs() < 1e-7).all().item<bool>()) << name;
    }
    EXPECT_EQ(moved, gamma > 0);
    const auto w_after = weights(*policy);
    for (const auto& [name, w] : w_before)
      if (name.find("e_score_correction_bias") == std::string::npos)
        EXPECT_TRUE(at::equal(w, w_after.at(name))) << name;
  }
}

TEST(Trainer, BadGroupsAreInputErrorsAndChangeNothing) {
  auto policy = make_policy("fp32");
  Trainer trainer(policy, TrainerOptions{});
  const auto w0 = weights(*policy);
  auto groups = make_groups(2, 3, 18);
  auto expect_error = [&](const std::vector<ScoredGroup>& g, const std::string& needle) {
    SCOPED_TRACE(needle);
    grpo::ckpt_test::expect_input_error([&] { trainer.step(g); }, {needle});
  };
  auto g = groups;
  g[1].completions.pop_back();
  expect_error(g, "group 1 (prompt_id 'p1'): has 2 completions");
  g = groups;
  g[0].completions[2].logprobs.pop_back();
  expect_error(g, "completion 2");
  g = groups;
  g[1].completions[0].token_ids[0] = 64;
  expect_error(g, "outside the vocabulary");
  g = groups;
  g[0].prompt_token_ids.clear();
  expect_error(g, "prompt_token_ids is empty");
  expect_error({}, "no groups");
  TrainerOptions rloo;
  rloo.advantage = AdvantageEstimator::kRloo;
  g = groups;
  for (auto& grp : g) grp.completions.resize(1);
  EXPECT_THROW(Trainer(policy, rloo).step(g), InputError);
  const auto w1 = weights(*policy);
  for (const auto& [name, w] : w0) EXPECT_TRUE(at::equal(w, w1.at(name))) << name;
  EXPECT_EQ(trainer.steps_done(), 0);

  TrainerOptions bf16;
  bf16.dtype = "bf16";
  EXPECT_THROW(Trainer(policy, bf16), InputError);  // the policy was built for fp32 compute
}

class TrainerCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("grpo_trainer_ckpt_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  TrainerOptions options() const {
    TrainerOptions o;
    o.lr = 2e-3;
    o.warmup_steps = 2;
    o.mini_batches = 2;
    o.ppo_epochs = 2;
    o.micro_batch_size = 3;
    o.kl_coef = 0.05;
    o.ref_refresh_steps = 1;  // the reference differs from the initial policy: it is saved
    o.bias_update_gamma = 1e-3;
    return o;
  }
  fs::path dir_;
};

TEST_F(TrainerCheckpoint, ResumeIsBitIdenticalToAnUninterruptedRun) {
  for (const char* dtype : {"fp32", "bf16"}) {
    SCOPED_TRACE(dtype);
    TrainerOptions o = options();
    o.dtype = dtype;
    const auto g1 = make_groups(2, 4, 19), g2 = make_groups(2, 4, 20), g3 = make_groups(2, 4, 21);
    const std::string ckpt = (dir_ / (std::string("step-1-") + dtype)).string();
    auto a = make_policy(dtype);
    Trainer ta(a, o);
    ta.step(g1);
    ta.save_checkpoint(ckpt);
    const auto saved = weights(*a);
    ta.step(g2);
    ta.step(g3);

    auto b = make_policy(dtype);  // the run's initial policy
    Trainer tb(b, o);
    tb.load_checkpoint(ckpt);
    EXPECT_EQ(tb.steps_done(), 1);
    tb.step(g2);
    tb.step(g3);
    const auto wa = weights(*a), wb = weights(*b);
    ASSERT_EQ(wa.size(), wb.size());
    for (const auto& [name, w] : wa) EXPECT_TRUE(at::equal(w, wb.at(name))) << name;

    // The policy part is a plain HF checkpoint.
    DeepseekModel plain = load_pretrained(ckpt);
    for (const auto& [name, w] : plain.state_dict()) EXPECT_TRUE(at::equal(w, saved.at(name))) << name;
    EXPECT_TRUE(fs::exists(fs::path(ckpt) / "trainer" / "reference.safetensors"));
  }
}

TEST_F(TrainerCheckpoint, NoKlMeansNoReference) {
  TrainerOptions o = options();
  o.kl_coef = 0;
  auto a = make_policy("fp32");
  Trainer ta(a, o);
  ta.step(make_groups(2, 4, 25));
  const std::string ckpt = (dir_ / "nokl").string();
  ta.save_checkpoint(ckpt);
  nlohmann::json state = nlohmann::json::parse(std::ifstream(fs::path(ckpt) / "trainer" / "state.json"));
  EXPECT_EQ(state.at("reference"), "none");
  EXPECT_EQ(state.at("steps_done"), 1);
  EXPECT_FALSE(fs::exists(fs::path(ckpt) / "trainer" / "reference.safetensors"));
  EXPECT_FALSE(fs::exists(ckpt + ".tmp"));
}

TEST_F(TrainerCheckpoint, FailedSaveLeavesThePreviousCheckpoint) {
  const auto groups = make_groups(2, 4, 22);
  const std::string ckpt = (dir_ / "latest").string();
  auto a = make_policy("fp32");
  Trainer ta(a, options());
  ta.step(groups);
  ta.save_checkpoint(ckpt);
  const auto saved = weights(*a);
  ta.step(groups);

  // A full disk, simulated by a file-size limit: writes past 4 KiB fail with EFBIG.
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    ta.save_checkpoint(ckpt);
  } catch (const InputError& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find(ckpt), std::string::npos) << e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_FALSE(fs::exists(ckpt + ".tmp"));

  auto b = make_policy("fp32");
  Trainer tb(b, options());
  tb.load_checkpoint(ckpt);
  EXPECT_EQ(tb.steps_done(), 1);
  const auto wb = weights(*b);
  for (const auto& [name, w] : saved) EXPECT_TRUE(at::equal(w, wb.at(name))) << name;
}

TEST_F(TrainerCheckpoint, MismatchesAreInputErrorsAndChangeNothing) {
  const auto groups = make_groups(2, 4, 23);
  TrainerOptions o = options();
  o.ref_refresh_steps = 0;  // the reference stays the initial policy: not saved, checked by checksum
  const std::string ckpt = (dir_ / "c").string();
  auto a = make_policy("fp32");
  Trainer ta(a, o);
  ta.step(groups);
  ta.save_checkpoint(ckpt);
  EXPECT_FALSE(fs::exists(fs::path(ckpt) / "trainer" / "reference.safetensors"));

  auto expect_error = [&](Trainer& t, const std::string& needle) {
    const auto before = weights(*t.policy());
    try {
      t.load_checkpoint(ckpt);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    const auto after = weights(*t.policy());
    for (const auto& [name, w] : before) EXPECT_TRUE(at::equal(w, after.at(name))) << name;
    EXPECT_EQ(t.steps_done(), 0);
  };
  // A different initial policy: the saved "initial reference" would be wrong.
  auto other = make_policy("fp32", 99);
  Trainer t_other(other, o);
  expect_error(t_other, "checksum");
  // A different architecture.
  auto wide = std::make_shared<DeepseekModel>(random_model(tiny_config({{"hidden_size", 48}}), {}, 7));
  Trainer t_wide(wide, o);
  expect_error(t_wide, "shape");
  // A damaged optimizer state.
  auto c = make_policy("fp32");
  Trainer tc(c, o);
  { std::ofstream(fs::path(ckpt) / "trainer" / "optimizer.safetensors") << "not safetensors"; }
  expect_error(tc, "optimizer.safetensors");
  fs::remove(fs::path(ckpt) / "trainer" / "state.json");
  expect_error(tc, "state.json");
}

TEST(TrainerConfig, ReadsEveryKeyAndNamesBadOnes) {
  const std::string yaml = R"(
trainer:
  lr: 2.0e-6
  warmup_steps: 3
  lr_decay: cosine
  ppo_epochs: 2
  mini_batches: 4
  micro_batch_size: 8
  advantage: dr_grpo
  clip_high: 0.28
  loss_agg: seq-mean-token-sum-norm
  norm_length: 512
  kl_coef: 0.001
  kl_estimator: k2
  bias_update_gamma: 0.001
  zero1: true
  dtype: bf16
)";
  Config root = Config::parse(yaml, "run.yaml");
  TrainerOptions o = trainer_options_from_config(root.sub("trainer"));
  EXPECT_EQ(o.lr, 2e-6);
  EXPECT_EQ(o.warmup_steps, 3);
  EXPECT_EQ(o.lr_decay, LrDecay::kCosine);
  EXPECT_EQ(o.ppo_epochs, 2);
  EXPECT_EQ(o.mini_batches, 4);
  EXPECT_EQ(o.micro_batch_size, 8);
  EXPECT_EQ(o.advantage, AdvantageEstimator::kDrGrpo);
  EXPECT_EQ(o.policy.clip_high, 0.28);
  EXPECT_EQ(o.policy.clip_low, 0.2);
  EXPECT_EQ(o.policy.aggregation, LossAggregation::kSeqMeanTokenSumNorm);
  EXPECT_EQ(o.policy.norm_length, 512);
  EXPECT_EQ(o.kl_estimator, KlEstimator::kK2);
  EXPECT_TRUE(o.zero1);
  EXPECT_EQ(o.model_options().compute_dtype, at::kBFloat16);
  EXPECT_EQ(o.model_options().param_dtype, at::kFloat);

  auto error_of = [&](const std::string& override_text) {
    return grpo::testing::trainer_options_error(yaml, override_text);
  };
  EXPECT_NE(error_of("trainer.lerning_rate=1").find("run.yaml: key 'trainer.lerning_rate': unknown key"),
            std::string::npos);
  EXPECT_NE(error_of("trainer.ppo_epochs=two").find("key 'trainer.ppo_epochs'"), std::string::npos);
  EXPECT_NE(error_of("trainer.loss_agg=token-sum").find("key 'trainer.loss_agg'"), std::string::npos);
  EXPECT_NE(error_of("trainer.kl_estimator=k4").find("key 'trainer.kl_estimator'"), std::string::npos);
  EXPECT_NE(error_of("trainer.dtype=fp16").find("key 'trainer.dtype'"), std::string::npos);
  EXPECT_NE(error_of("trainer.norm_length=0").find("key 'trainer.norm_length'"), std::string::npos);
  EXPECT_NE(error_of("trainer.micro_batch_size=0").find("key 'trainer.micro_batch_size'"), std::string::npos);
  EXPECT_NE(error_of("trainer.temperature=0").find("key 'trainer.temperature'"), std::string::npos);
  EXPECT_NE(error_of("trainer.kl_in_reward=maybe").find("key 'trainer.kl_in_reward'"), std::string::npos);
}

// ---- expert parallelism ---------------------------------------------------------------------

// This rank's shard of make_policy's model (the same draws as the whole).
std::shared_ptr<DeepseekModel> policy_shard(const TrainerOptions& o, int rank, int world) {
  ModelOptions mo = o.model_options();
  mo.expert_rank = rank;
  mo.expert_ranks = world;
  auto shard = std::make_shared<DeepseekModel>(small_config(), mo);
  shard->load_state(make_policy(o.dtype)->state_dict(), "whole policy");
  return shard;
}

TrainerOptions ep_options() {
  TrainerOptions o;
  o.lr = 1e-3;  // Adam turns fp32 summation-order noise into steps of up to lr: 12 of them here
  o.mini_batches = 2;
  o.ppo_epochs = 2;
  o.micro_batch_size = 3;  // uneven blocks: some ranks run filler passes
  o.max_grad_norm = 0.5;   // clipping by the global norm
  o.kl_coef = 0.05;
  o.ref_refresh_steps = 2;  // the reference is refreshed, then saved with the checkpoint
  o.entropy_coef = 0.01;
  o.bias_update_gamma = 1e-2;
  return o;
}

// Three GRPO steps of 5 groups × 3 completions (mini-batches of 8 and 7 sequences) on EP = 2 and
// 4 ranks (and on 2 with ZeRO-1) equal one process in fp32: every step's statistics (losses, KL, entropy, clip
// fractions, global gradient norms) to 1e-5 and the weights after 12 optimizer steps to 2e-5 (the biases included,
// updated from the all-reduced expert loads), for token-mean and seq-mean-token-sum. The ranks also save a checkpoint
// after step 2 and resume it on fresh trainers, which then reproduce step 3 bit for bit; the checkpoint is a plain HF
// checkpoint of the whole model.
TEST(TrainerExpertParallel, TwoAndFourRanksEqualOneProcessAndResume) {
  const fs::path dir = fs::temp_directory_path() / ("grpo_trainer_ep_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* agg : {"token-mean", "seq-mean-token-sum"}) {
    SCOPED_TRACE(agg);
    TrainerOptions o = ep_options();
    o.policy.aggregation = parse_loss_aggregation(agg);
    const std::vector<std::vector<ScoredGroup>> steps = {make_groups(5, 3, 31), make_groups(5, 3, 32),
                                                         make_groups(5, 3, 33)};
    auto one = make_policy(o.dtype);
    Trainer single(one, o);
    std::vector<TrainStats> want;
    std::map<std::string, at::Tensor> after_two;
    for (const auto& g : steps) {
      want.push_back(single.step(g));
      if (want.size() == 2) after_two = weights(*one);
    }
    const auto final_weights = weights(*one);
    EXPECT_GT(want[0].clip_fraction + want[1].clip_fraction + want[2].clip_fraction, 0.0);

    for (const auto& [world_, zero1_] : {std::pair{2, false}, std::pair{4, false}, std::pair{2, true}}) {
      const int world = world_;  // a variable lambdas can capture (clang: not a structured binding)
      const bool zero1 = zero1_;
      SCOPED_TRACE("EP=" + std::to_string(world) + (zero1 ? " with ZeRO-1" : ""));
      const std::string ckpt =
          (dir / (std::string(agg) + "-" + std::to_string(world) + (zero1 ? "-zero1" : ""))).string();
      TrainerOptions oz = o;
      oz.zero1 = zero1;
      on_ranks(world, [&](Distributed& dist) {
        auto shard = policy_shard(o, dist.rank(), world);
        Trainer t(shard, oz, &dist);
        std::map<std::string, at::Tensor> third;
        for (size_t i = 0; i < steps.size(); ++i) {
          const TrainStats got = t.step(steps[i]);
          for (const auto& [key, value] : want[i].as_map()) {
            if (key == "seconds") continue;
            EXPECT_NEAR(got.as_map().at(key), value, 1e-5 * std::max(1.0, std::abs(value)))
                << key << " at step " << i + 1 << " on rank " << dist.rank();
          }
          if (i == 1) t.save_checkpoint(ckpt);
        }
        double worst = 0;
        for (const auto& [name, w] : weights(*shard))
          worst = std::max(worst, (w - final_weights.at(name)).abs().max().item<double>());
        EXPECT_LT(worst, 2e-5) << "rank " << dist.rank();  // 12 Adam steps of fp32 noise (7e-6 measured)

        auto fresh = policy_shard(o, dist.rank(), world);
        Trainer resumed(fresh, oz, &dist);
        resumed.load_checkpoint(ckpt);
        EXPECT_EQ(resumed.steps_done(), 2);
        resumed.step(steps[2]);
        const auto a = weights(*shard), b = weights(*fresh);
        for (const auto& [name, w] : a) EXPECT_TRUE(at::equal(w, b.at(name))) << name << " rank " << dist.rank();
      });
      double worst = 0;
      for (const auto& [name, w] : load_weights(ckpt))
        worst = std::max(worst, (w - after_two.at(name)).abs().max().item<double>());
      EXPECT_LT(worst, 1e-5);
      EXPECT_TRUE(fs::exists(fs::path(ckpt) / ("rank-" + std::to_string(world - 1) + "-state.safetensors")));
      // Saved by `world` ranks: one process cannot take its per-rank optimizer state.
      Trainer other(make_policy(o.dtype), o);
      try {
        other.load_checkpoint(ckpt);
        ADD_FAILURE() << "an EP=" << world << " checkpoint loaded into one process";
      } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("saved by " + std::to_string(world) + " expert-parallel ranks"),
                  std::string::npos)
            << e.what();
      }
    }
  }
  fs::remove_all(dir);
}

TEST(TrainerExpertParallel, APolicyThatIsNotTheRanksShardIsAnInputError) {
  try {
    TrainerOptions o = ep_options();
    o.zero1 = true;
    Trainer t(make_policy("fp32"), o);  // one process: nothing to shard over
    ADD_FAILURE() << "zero1 accepted without ranks";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trainer.zero1 shards the optimizer state over expert-parallel ranks"),
              std::string::npos)
        << e.what();
  }
  on_ranks(2, [&](Distributed& dist) {
    try {
      Trainer t(make_policy("fp32"), ep_options(), &dist);  // the whole model on every rank
      ADD_FAILURE() << "accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("needs the policy's expert shard " + std::to_string(dist.rank()) + " of 2"),
                std::string::npos)
          << e.what();
    }
  });
}

}  // namespace
