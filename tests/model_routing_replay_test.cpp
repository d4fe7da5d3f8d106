// Routing replay (R3) in the model: routes out of a forward (Feed::routes), forced experts in
// (Feed::replay), and replay_gate's weights against hand computations and finite differences.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "file_testutil.h"
#include "model/moe_gate.h"
#include "model/routes_tensor.h"
#include "model_test_util.h"

namespace grpo {
namespace {

using ckpt_test::expect_input_error;
using testing::random_ids;
using testing::random_model;
using testing::tiny_config;

// Feed::routes of a [B, T] forward as a replay tensor [B, T, L_moe, k].
at::Tensor as_replay(const std::vector<at::Tensor>& routes, int64_t b, int64_t t) {
  std::vector<at::Tensor> moe;
  for (const at::Tensor& r : routes)
    if (r.defined()) moe.push_back(r);
  at::Tensor s = at::stack(moe, 1);  // [B·T, L, k]
  return s.view({b, t, s.size(1), s.size(2)});
}

TEST(RoutingReplay, RoutesOutCoverMoeLayersOnly) {
  DeepseekModel m = random_model(tiny_config());
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> routes;
  Feed feed;
  feed.routes = &routes;
  m.hidden(random_ids(2, 7, 64), feed);
  ASSERT_EQ(routes.size(), 3u);
  EXPECT_FALSE(routes[0].defined());  // first_k_dense_replace = 1
  for (int i = 1; i < 3; ++i) {
    ASSERT_EQ(routes[i].sizes(), at::IntArrayRef({14, 3}));
    EXPECT_TRUE(routes[i].eq(std::get<0>(routes[i].sort(-1))).all().item<bool>()) << "ascending ids";
  }
  Routes r;
  append_routes(r, routes, 7, 7);  // row 1
  EXPECT_EQ(r.tokens, 7);
  EXPECT_EQ(r.layers, 2);
  EXPECT_EQ(r.top_k, 3);
  EXPECT_EQ(r.experts[r.offset(2, 1) + 1], routes[2][9][1].item<int64_t>());
  EXPECT_TRUE(routes_tensor(r).select(1, 0).equal(routes[1].narrow(0, 7, 7)));
}

TEST(RoutingReplay, ReplayOfTheRoutersOwnChoiceIsExact) {
  DeepseekModel m = random_model(tiny_config());
  at::NoGradGuard no_grad;
  const at::Tensor ids = random_ids(2, 9, 64, 11);
  std::vector<at::Tensor> routes, load, load_replayed;
  Feed feed;
  feed.routes = &routes;
  feed.expert_load = &load;
  const at::Tensor h = m.hidden(ids, feed);
  Feed replay;
  replay.replay = as_replay(routes, 2, 9);
  replay.expert_load = &load_replayed;
  EXPECT_TRUE(m.hidden(ids, replay).equal(h));  // bit for bit
  for (int i = 1; i < 3; ++i) EXPECT_TRUE(load_replayed[i].equal(load[i]));
}

TEST(RoutingReplay, ForcedExpertsAreTheOnesUsed) {
  DeepseekModel m = random_model(tiny_config());
  at::NoGradGuard no_grad;
  const at::Tensor ids = random_ids(1, 6, 64, 5);
  std::vector<at::Tensor> routes, load;
  Feed plain;
  plain.routes = &routes;
  m.hidden(ids, plain);
  // Layer 1 (MoE layer 0): every token through experts {0, 5, 7}, which the router did not
  // choose for at least one token; layer 2: the router's choice (-1).
  const at::Tensor forced = at::tensor({0, 5, 7}, at::kLong);
  EXPECT_FALSE(routes[1].eq(forced.unsqueeze(0)).all(1).all().item<bool>());
  at::Tensor replay = at::full({1, 6, 2, 3}, -1, at::kLong);
  replay.select(2, 0).copy_(forced.expand({1, 6, 3}));
  std::vector<at::Tensor> forced_routes;
  Feed feed;
  feed.replay = replay;
  feed.expert_load = &load;
  feed.routes = &forced_routes;
  const at::Tensor h = m.hidden(ids, feed);
  EXPECT_TRUE(load[1].equal(at::tensor({6, 0, 0, 0, 0, 6, 0, 6}, at::kLong)));
  EXPECT_TRUE(forced_routes[1].equal(forced.expand({6, 3})));
  EXPECT_EQ(load[2].sum().item<int64_t>(), 6 * 3);  // routed by the router
  EXPECT_FALSE(h.equal(m.hidden(ids)));
}

TEST(RoutingReplay, ReplayedWeightsMatchAHandComputation) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const at::Tensor logits = at::randn({3, 6}, gen, at::TensorOptions().dtype(at::kDouble));
  const at::Tensor experts = at::tensor({0, 2, 1, 5, 3, 4}, at::kLong).view({3, 2});
  auto at_ = [&](int64_t n, int64_t e) { return logits[n][e].item<double>(); };
  GateSpec v3;
  v3.top_k = 2;
  v3.routed_scaling_factor = 2.5;
  GateSpec v2;  // softmax, top-1, no normalisation: × routed_scaling_factor
  v2.family = ModelFamily::kDeepseekV2;
  v2.scoring = ScoringFunc::kSoftmax;
  v2.method = TopkMethod::kGreedy;
  v2.top_k = 1;
  v2.routed_scaling_factor = 16.0;
  const at::Tensor w3 = replay_gate(logits, experts, v3).weights;
  const at::Tensor w2 = replay_gate(logits, experts.narrow(1, 1, 1), v2).weights;
  for (int64_t n = 0; n < 3; ++n) {
    double s[2];
    for (int64_t j = 0; j < 2; ++j) s[j] = 1.0 / (1.0 + std::exp(-at_(n, experts[n][j].item<int64_t>())));
    for (int64_t j = 0; j < 2; ++j) EXPECT_NEAR(w3[n][j].item<double>(), 2.5 * s[j] / (s[0] + s[1] + 1e-20), 1e-12);
    double z = 0;
    for (int64_t e = 0; e < 6; ++e) z += std::exp(at_(n, e));
    EXPECT_NEAR(w2[n][0].item<double>(), 16.0 * std::exp(at_(n, experts[n][1].item<int64_t>())) / z, 1e-12);
  }
}

TEST(RoutingReplay, RouterGetsFiniteDifferenceGradientsThroughReplayedWeights) {
  ModelOptions fp64;
  fp64.compute_dtype = fp64.param_dtype = at::kDouble;
  DeepseekModel m = random_model(tiny_config(), fp64);
  const at::Tensor ids = random_ids(1, 5, 64, 9);
  at::Tensor replay = at::full({1, 5, 2, 3}, -1, at::kLong);
  replay.select(2, 0).copy_(at::tensor({1, 2, 6}, at::kLong).expand({1, 5, 3}));
  replay.select(2, 1).copy_(at::tensor({0, 3, 4}, at::kLong).expand({1, 5, 3}));
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const at::Tensor probe = at::randn({1, 5, 32}, gen, at::TensorOptions().dtype(at::kDouble));
  Feed feed;
  feed.replay = replay;
  at::Tensor* gate = nullptr;
  for (auto& [name, t] : m.named_parameters())
    if (name == "model.layers.1.mlp.gate.weight") gate = t;
  ASSERT_NE(gate, nullptr);
  gate->requires_grad_(true);
  (m.hidden(ids, feed) * probe).sum().backward();
  const at::Tensor grad = gate->grad().clone();
  ASSERT_GT(grad.abs().max().item<double>(), 0);
  at::NoGradGuard no_grad;
  const double eps = 1e-6;
  for (int64_t e : {1, 2, 6}) {  // the replayed experts' rows (the others get no gradient: not in the set)
    for (int64_t d : {0, 7, 31}) {
      const double keep = (*gate)[e][d].item<double>();
      (*gate)[e][d].fill_(keep + eps);
      const double up = (m.hidden(ids, feed) * probe).sum().item<double>();
      (*gate)[e][d].fill_(keep - eps);
      const double down = (m.hidden(ids, feed) * probe).sum().item<double>();
      (*gate)[e][d].fill_(keep);
      EXPECT_NEAR(grad[e][d].item<double>(), (up - down) / (2 * eps), 1e-7) << "expert " << e << " dim " << d;
    }
  }
  EXPECT_EQ(grad[0].abs().max().item<double>(), 0.0);  // sigmoid scores: an unreplayed expert gets none
}

TEST(RoutingReplay, BadReplayIsAnInputError) {
  DeepseekModel m = random_model(tiny_config());
  at::NoGradGuard no_grad;
  const at::Tensor ids = random_ids(1, 4, 64);
  Feed feed;
  feed.replay = at::zeros({1, 4, 3, 3}, at::kLong);  // 3 layers: the model has 2 MoE layers
  expect_input_error([&] { m.hidden(ids, feed); }, {"routing replay", "[1, 4, 2, 3]"});
  feed.replay = at::full({1, 4, 2, 3}, 8, at::kLong);
  expect_input_error([&] { m.hidden(ids, feed); }, {"expert id 8", "[0, 8)"});
}

}  // namespace
}  // namespace grpo
