// Routing replay in the trainer (issue 19 item 3, in process): completions sampled by the engine
// with their routes, then a router tie flipped in the trainer's copy of the weights: without
// replay the trainer routes tokens elsewhere, with trainer.routing_replay: rollout every forward
// uses exactly the engine's experts. Also R2 (old_policy), freeze_router, and bad routes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "learner/train_batch.h"
#include "learner/trainer.h"
#include "model/routes_tensor.h"
#include "model_test_util.h"
#include "rollout/engine.h"
#include "tests/file_testutil.h"

using namespace grpo;
using namespace grpo::testing;

namespace {

// Two prompts, 3 sampled completions each, from an engine recording routes; rewards 0, 1, 0.5
// by sample so that the advantages are not zero.
std::vector<ScoredGroup> engine_groups(std::shared_ptr<const CausalLM> model) {
  rollout::Engine engine(std::move(model), 0);
  std::vector<std::vector<int64_t>> prompts = {row(random_ids(1, 5, 64, 41), 0), row(random_ids(1, 9, 64, 42), 0)};
  std::vector<ScoredGroup> groups(prompts.size());
  std::map<uint64_t, size_t> group_of;
  for (size_t i = 0; i < prompts.size(); ++i) {
    rollout::GenerationParams g;
    g.sampling.temperature = 1.0;
    g.sampling.seed = 3 + i;
    g.max_new_tokens = 6;
    group_of[engine.submit({prompts[i], 3, g, /*record_routes=*/true})] = i;
    groups[i].prompt_id = "p" + std::to_string(i);
    groups[i].prompt_token_ids.assign(prompts[i].begin(), prompts[i].end());
    groups[i].completions.resize(3);
  }
  for (rollout::Completion& c : engine.run_until_idle()) {
    Completion& out = groups[group_of.at(c.request_id)].completions[c.sample_index];
    out.token_ids.assign(c.token_ids.begin(), c.token_ids.end());
    out.logprobs = c.logprobs;
    out.reward = 0.5 * double((c.sample_index * 2) % 3);
    out.finish_reason = c.finish_reason;
    out.routes = c.routes;
  }
  return groups;
}

// A copy that shares no storage with `m` (load_state keeps the given tensors when it can).
std::shared_ptr<DeepseekModel> copy_of(const DeepseekModel& m) {
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : m.state_dict()) state[name] = t.clone();
  auto out = std::make_shared<DeepseekModel>(m.config(), m.options());
  out->load_state(state, "copy");
  return out;
}

// The trainer's copy with one router tie flipped: MoE layer 0's least-chosen expert (in
// `groups`' routes) gets +10 on its correction bias, so that its router picks it for every token
// (the bias changes the choice, never the weights).
void flip_router(DeepseekModel& m, const std::vector<ScoredGroup>& groups) {
  at::Tensor counts = at::zeros({8}, at::kLong);
  for (const ScoredGroup& g : groups)
    for (const Completion& c : g.completions)
      counts += at::bincount(routes_tensor(c.routes).select(1, 0).reshape({-1}), {}, 8);
  const int64_t rare = counts.argmin().item<int64_t>();
  at::NoGradGuard no_grad;
  for (auto& [name, t] : m.named_parameters())
    if (name == "model.layers.1.mlp.gate.e_score_correction_bias") (*t)[rare] += 10.0;
}

TrainBatch batch_of(const std::vector<ScoredGroup>& groups) {
  return make_train_batch(groups, {64, 256, false}, 1, at::kFloat);
}

TEST(RoutingReplay, TrainerReplaysTheEnginesExpertsThroughARouterTieFlip) {
  auto rollout_model = std::make_shared<DeepseekModel>(random_model(tiny_config()));
  const std::vector<ScoredGroup> groups = engine_groups(rollout_model);
  auto trainer_model = copy_of(*rollout_model);
  flip_router(*trainer_model, groups);

  TrainBatch batch = batch_of(groups);
  const at::Tensor engine_routes = replay_routes(groups, {2, 3, 8}, batch.mask.size(1));  // [B, T-1, 2, 3]
  at::Tensor own;
  completion_logprobs(*trainer_model, batch, 4, {}, nullptr, &own);
  const at::Tensor real = engine_routes.select(3, 0) >= 0;  // [B, T-1, 2]
  const at::Tensor same = (own == engine_routes).all(3);    // [B, T-1, 2]
  const int64_t flipped = (real & same.logical_not()).sum().item<int64_t>();
  EXPECT_GT(flipped, 0) << "without replay the trainer routes some tokens elsewhere";

  batch.routes = engine_routes;
  at::Tensor chosen_under_replay;  // the routers' own choice is still reported under replay
  completion_logprobs(*trainer_model, batch, 4, {}, nullptr, &chosen_under_replay);
  {
    at::NoGradGuard no_grad;
    const CompletionForward f = completion_forward(*trainer_model, batch);
    EXPECT_TRUE(f.routes.equal(engine_routes)) << "every token and MoE layer through the engine's experts";
    EXPECT_TRUE(f.chosen.equal(chosen_under_replay));
  }
  // The first MoE layer sees the same inputs with or without replay: its own choice is the flipped one.
  EXPECT_TRUE(chosen_under_replay.select(2, 0).equal(own.select(2, 0)));

  // Through Trainer::step: with replay, the flipped model's old log-probs are the unflipped
  // model's (the bias only chooses experts), so the mismatch to the rollout is the engine's
  // arithmetic alone; without replay the flipped tokens add to it.
  auto mismatch = [&](const DeepseekModel& m, RoutingReplay mode, const std::string& key) {
    TrainerOptions o;
    o.routing_replay = mode;
    return Trainer(copy_of(m), o).step(groups).mismatch.at(key);
  };
  const double arithmetic = mismatch(*rollout_model, RoutingReplay::kOff, "logp_abs_mean");
  EXPECT_EQ(arithmetic, 0.0) << "same weights: the batch-invariant trainer reproduces the engine exactly";
  EXPECT_EQ(mismatch(*trainer_model, RoutingReplay::kRollout, "logp_abs_mean"), arithmetic);
  EXPECT_GT(mismatch(*trainer_model, RoutingReplay::kOff, "logp_abs_mean"), 2 * arithmetic + 1e-3);
  // The expert-disagreement metric: nothing on the rollout's own weights; with replay, the flipped
  // first MoE layer only (the second sees the engine's inputs); without it, at least as much (the
  // flipped layer changes what the second one sees).
  EXPECT_EQ(mismatch(*rollout_model, RoutingReplay::kOff, "expert_disagreement"), 0.0);
  const double disagree = mismatch(*trainer_model, RoutingReplay::kRollout, "expert_disagreement");
  EXPECT_GT(disagree, 0.0);
  EXPECT_EQ(mismatch(*trainer_model, RoutingReplay::kRollout, "expert_disagreement/moe_layer1"), 0.0);
  EXPECT_EQ(disagree, mismatch(*trainer_model, RoutingReplay::kRollout, "expert_disagreement/moe_layer0") / 2);
  EXPECT_GE(mismatch(*trainer_model, RoutingReplay::kOff, "expert_disagreement"), disagree);
}

TEST(RoutingReplay, OldPolicyReplaysTheTrainersOwnFirstPassExactly) {
  auto model = std::make_shared<DeepseekModel>(random_model(tiny_config()));
  const std::vector<ScoredGroup> groups = engine_groups(model);
  TrainBatch batch = batch_of(groups);
  at::Tensor own;
  const at::Tensor logp = completion_logprobs(*model, batch, 2, {}, nullptr, &own);
  batch.routes = own;
  at::Tensor again;
  EXPECT_TRUE(completion_logprobs(*model, batch, 2, {}, nullptr, &again).equal(logp));
  EXPECT_TRUE(again.equal(own));
  const at::Tensor rows = at::tensor({4, 1}, at::kLong);
  const TrainBatch chosen = batch.select(rows);  // select() carries the routes, trimmed like the ids
  EXPECT_TRUE(chosen.routes.equal(own.index_select(0, rows).narrow(1, 0, chosen.mask.size(1))));

  TrainerOptions o;
  o.routing_replay = RoutingReplay::kOldPolicy;
  o.ppo_epochs = 2;
  o.lr = 1e-3;
  TrainStats st = Trainer(copy_of(*model), o).step(groups);
  EXPECT_TRUE(std::isfinite(st.loss));
  EXPECT_EQ(st.optimizer_steps, 2);
}

TEST(RoutingReplay, FreezeRouterKeepsRoutersAndBiases) {
  auto model = std::make_shared<DeepseekModel>(random_model(tiny_config()));
  const std::vector<ScoredGroup> groups = engine_groups(model);
  for (bool freeze : {false, true}) {
    SCOPED_TRACE(freeze);
    auto policy = copy_of(*model);
    TrainerOptions o;
    o.lr = 1e-2;
    o.freeze_router = freeze;
    o.routing_replay = RoutingReplay::kRollout;
    o.bias_update_gamma = 0.01;
    ::testing::internal::CaptureStderr();
    Trainer trainer(policy, o);
    const std::string warning = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(warning.find("bias_update_gamma"), std::string::npos) << warning;
    trainer.step(groups);
    const auto before = model->state_dict(), after = policy->state_dict();
    int routers_moved = 0, others_moved = 0;
    for (const auto& [name, w] : before) {
      const bool router = name.find("mlp.gate.") != std::string::npos;
      (router ? routers_moved : others_moved) += at::equal(w, after.at(name)) ? 0 : 1;
    }
    EXPECT_EQ(routers_moved, freeze ? 0 : 4);  // 2 MoE layers: weight and bias
    EXPECT_GT(others_moved, 10);
  }
}

// The aux-loss-free bias update is off during RL by default; a config that turns it on for a MoE
// policy is warned about, with or without replay.
TEST(RoutingReplay, BiasUpdateDuringRlIsWarnedAbout) {
  auto model = std::make_shared<DeepseekModel>(random_model(tiny_config()));
  auto warning_for = [&](double gamma, RoutingReplay replay) {
    TrainerOptions o;
    o.bias_update_gamma = gamma;
    o.routing_replay = replay;
    ::testing::internal::CaptureStderr();
    Trainer trainer(copy_of(*model), o);
    return ::testing::internal::GetCapturedStderr();
  };
  EXPECT_EQ(warning_for(0.0, RoutingReplay::kOff), "");
  EXPECT_THAT(warning_for(1e-3, RoutingReplay::kOff),
              ::testing::HasSubstr("warning: trainer.bias_update_gamma 0.001 > 0: the correction biases move the "
                                   "routing between the rollouts' weights and the trainer's"));
  EXPECT_THAT(warning_for(1e-3, RoutingReplay::kRollout), ::testing::HasSubstr("away from the replayed routes"));
}

TEST(RoutingReplay, BadRoutesAreInputErrorsNamingGroupCompletionAndLayer) {
  auto model = std::make_shared<DeepseekModel>(random_model(tiny_config()));
  const std::vector<ScoredGroup> groups = engine_groups(model);
  TrainerOptions o;
  o.routing_replay = RoutingReplay::kRollout;
  Trainer trainer(model, o);
  const auto w0 = model->state_dict();
  auto expect_error = [&](const std::vector<ScoredGroup>& g, const std::string& needle) {
    SCOPED_TRACE(needle);
    grpo::ckpt_test::expect_input_error([&] { trainer.step(g); }, {needle});
  };
  auto g = groups;
  g[1].completions[2].routes = {};
  expect_error(g, "routing_replay: rollout needs routes: group 1 (prompt_id 'p1'), completion 2 has none");
  g = groups;
  Routes& r = g[0].completions[1].routes;
  r.layers = 3;
  r.experts.resize(static_cast<size_t>(r.tokens * 3 * 3));
  expect_error(g, "group 0 (prompt_id 'p0'), completion 1: routes of 3 MoE layers × top-3, the model has 2 × top-3");
  g = groups;
  g[1].completions[0].routes.tokens -= 1;
  g[1].completions[0].routes.experts.resize(g[1].completions[0].routes.experts.size() - 6);
  expect_error(g, "group 1 (prompt_id 'p1'), completion 0: routes of");
  expect_error(g, "expected prompt + completion − 1 = ");
  g = groups;
  g[0].completions[0].routes.experts[g[0].completions[0].routes.offset(2, 1) + 1] = 8;
  expect_error(g, "group 0 (prompt_id 'p0'), completion 0: routes at token 2, MoE layer 1: expert 8 outside [0, 8)");
  EXPECT_EQ(trainer.steps_done(), 0);
  const auto w1 = model->state_dict();
  for (const auto& [name, w] : w0) EXPECT_TRUE(at::equal(w, w1.at(name))) << name;

  auto dense = std::make_shared<DenseDecoder>(random_dense(dense_config_json("llama")));
  EXPECT_THROW(Trainer(dense, o), InputError);
}

TEST(RoutingReplay, ConfigKeys) {
  Config root = Config::parse("trainer:\n  routing_replay: old_policy\n  freeze_router: true\n", "run.yaml");
  TrainerOptions o = trainer_options_from_config(root.sub("trainer"));
  EXPECT_EQ(o.routing_replay, RoutingReplay::kOldPolicy);
  EXPECT_TRUE(o.freeze_router);
  EXPECT_EQ(TrainerOptions{}.routing_replay, RoutingReplay::kOff);
  root = Config::parse("trainer:\n  routing_replay: off\n  freeze_router: false\n", "run.yaml");
  EXPECT_EQ(trainer_options_from_config(root.sub("trainer")).routing_replay, RoutingReplay::kOff);
  root = Config::parse("trainer:\n  routing_replay: rollout\n", "run.yaml");
  EXPECT_EQ(trainer_options_from_config(root.sub("trainer")).routing_replay, RoutingReplay::kRollout);
  EXPECT_EQ(TrainerOptions{}.bias_update_gamma, 0.0);
  try {
    trainer_options_from_config(Config::parse("trainer:\n  routing_replay: r3\n", "run.yaml").sub("trainer"));
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trainer.routing_replay"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected off, rollout or old_policy"), std::string::npos) << e.what();
  }
}

}  // namespace
