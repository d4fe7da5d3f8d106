// The batched model against the slow float64 reference (model_reference.h) on configs covering
// V2 and V3 gating, grouped routing, YaRN, both rope layouts, moe_layer_freq, q_lora_rank null
// and tied embeddings.
#include <gtest/gtest.h>

#include "model/moe.h"
#include "model/moe_gate.h"
#include "model/rope.h"
#include "model_reference.h"
#include "model_test_util.h"

using namespace grpo;
using namespace grpo::testing;
using nlohmann::json;

namespace {

struct Case {
  const char* name;
  json patch;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  return {
      {"V3NoauxTcGroupedYarnHalves",
       {{"rope_interleave", false},
        {"rope_scaling",
         {{"type", "yarn"},
          {"factor", 4},
          {"original_max_position_embeddings", 64},
          {"mscale", 0.707},
          {"mscale_all_dim", 1.0}}}}},
      {"V3YarnRopeParametersInterleavedTied",
       {{"rope_interleave", true},
        {"tie_word_embeddings", true},
        {"num_experts_per_tok", 2},
        {"n_group", 1},
        {"topk_group", 1},
        {"rope_theta", nullptr},
        {"rope_parameters",
         {{"rope_type", "yarn"},
          {"rope_theta", 100.0},
          {"factor", 4.0},
          {"original_max_position_embeddings", 64},
          {"beta_fast", 16},
          {"beta_slow", 2},
          {"mscale", 1.0},
          {"mscale_all_dim", 0.8}}}}},
      {"V2GreedyNoQLoraMoeLayerFreq2",
       {{"architectures", {"DeepseekV2ForCausalLM"}},
        {"model_type", "deepseek_v2"},
        {"q_lora_rank", nullptr},
        {"num_hidden_layers", 4},
        {"moe_layer_freq", 2},
        {"topk_method", "greedy"},
        {"scoring_func", "softmax"},
        {"norm_topk_prob", false},
        {"routed_scaling_factor", 1.5},
        {"n_shared_experts", 2},
        {"n_group", nullptr},
        {"topk_group", nullptr}}},
      {"V2GroupLimitedGreedyNormYarn",
       {{"architectures", {"DeepseekV2ForCausalLM"}},
        {"model_type", "deepseek_v2"},
        {"topk_method", "group_limited_greedy"},
        {"scoring_func", "softmax"},
        {"norm_topk_prob", true},
        {"routed_scaling_factor", 16.0},
        {"rope_scaling",
         {{"type", "yarn"},
          {"factor", 4},
          {"original_max_position_embeddings", 64},
          {"mscale", 0.707},
          {"mscale_all_dim", 0.707},
          {"beta_fast", 32},
          {"beta_slow", 1}}}}},
  };
}

class ReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceTest, Float64LogitsMatchReference) {
  ModelConfig c = tiny_config(GetParam().patch);
  DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
  at::Tensor ids = random_ids(2, 20, c.vocab_size);
  at::Tensor logits = m.forward(ids);  // [2, 20, V]
  for (int64_t b = 0; b < 2; ++b) {
    at::Tensor ref = reference_logits(c, m.state_dict(), row(ids, b));
    EXPECT_GT(ref.abs().max().item<double>(), 1.0);  // a model whose parts all matter
    EXPECT_LT(max_abs_diff(logits[b], ref), 1e-9) << GetParam().name << " row " << b;
  }
}

TEST_P(ReferenceTest, Float32LogProbsMatchReference) {
  ModelConfig c = tiny_config(GetParam().patch);
  DeepseekModel m64 = random_model(c, {at::kDouble, at::kDouble});
  DeepseekModel m32(c);
  m32.load_state(m64.state_dict(), "fp64 model");
  at::Tensor ids = random_ids(1, 20, c.vocab_size);
  at::Tensor ref = reference_logits(c, m64.state_dict(), row(ids, 0)).log_softmax(-1);
  EXPECT_LT(max_abs_diff(m32.forward(ids)[0].log_softmax(-1), ref), 1e-4) << GetParam().name;
}

// The router on its own: the same experts (as a set) and weights as the reference, on many
// tokens; and grouping must matter for some tokens (or the config would not test it).
TEST_P(ReferenceTest, GateMatchesReference) {
  ModelConfig c = tiny_config(GetParam().patch);
  at::Tensor logits = at::randn({500, c.n_routed_experts}, at::kDouble) * 2.0;
  at::Tensor bias =
      c.topk_method == TopkMethod::kNoauxTc ? at::randn({c.n_routed_experts}, at::kDouble) * 0.3 : at::Tensor();
  Routing r = moe_gate(logits, bias, GateSpec::from(c));
  std::vector<double> bias_v;
  if (bias.defined()) bias_v.assign(bias.data_ptr<double>(), bias.data_ptr<double>() + bias.numel());
  int differs_from_plain_topk = 0;
  for (int64_t n = 0; n < logits.size(0); ++n) {
    std::vector<double> lg(logits[n].data_ptr<double>(), logits[n].data_ptr<double>() + c.n_routed_experts);
    std::vector<int64_t> experts;
    std::vector<double> weights;
    reference_route(c, lg, bias_v, &experts, &weights);
    std::map<int64_t, double> want, got;
    for (size_t k = 0; k < experts.size(); ++k) want[experts[k]] = weights[k];
    for (int64_t k = 0; k < r.experts.size(1); ++k)
      got[r.experts[n][k].item<int64_t>()] = r.weights[n][k].item<double>();
    ASSERT_EQ(want.size(), got.size());
    for (auto& [e, w] : want) {
      ASSERT_TRUE(got.count(e)) << "token " << n << " expert " << e;
      EXPECT_NEAR(got[e], w, 1e-12);
    }
    at::Tensor plain =
        std::get<1>((bias.defined() ? logits[n].sigmoid() + bias : logits[n]).topk(c.num_experts_per_tok));
    std::set<int64_t> plain_set;
    for (int64_t k = 0; k < plain.numel(); ++k) plain_set.insert(plain[k].item<int64_t>());
    std::set<int64_t> got_set;
    for (auto& [e, w] : got) got_set.insert(e);
    differs_from_plain_topk += plain_set != got_set;
  }
  if (c.topk_method != TopkMethod::kGreedy && c.n_group > 1) EXPECT_GT(differs_from_plain_topk, 10);
}

INSTANTIATE_TEST_SUITE_P(Configs, ReferenceTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(Rope, YarnInverseFrequenciesAndFactor) {
  ModelConfig c = tiny_config(cases()[0].patch);
  std::vector<double> want = reference_inv_freq(c);
  at::Tensor got = rope_inv_freq(c.rope, c.qk_rope_head_dim);
  ASSERT_EQ(got.numel(), 4);
  // theta 100, d 8, original context 64: the ramp runs over dims [0, 3], so dim 0 keeps its
  // frequency, dim 3 is divided by the factor 4, and dims 1, 2 are blended 2/3 and 1/3.
  EXPECT_NEAR(got[0].item<double>(), 1.0, 1e-15);
  EXPECT_NEAR(got[1].item<double>(), std::pow(100.0, -0.25) * (2.0 / 3 + 1.0 / 3 / 4), 1e-15);
  EXPECT_NEAR(got[2].item<double>(), std::pow(100.0, -0.5) * (1.0 / 3 + 2.0 / 3 / 4), 1e-15);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[i].item<double>(), want[i], 1e-15) << i;
  EXPECT_NEAR(got[3].item<double>(), std::pow(100.0, -0.75) / 4.0, 1e-15);
  // cos/sin factor: mscale(4, 0.707) / mscale(4, 1.0); softmax scale times mscale(4, 1.0)^2.
  double m1 = 0.1 * 0.707 * std::log(4.0) + 1, m2 = 0.1 * std::log(4.0) + 1;
  EXPECT_NEAR(rope_attention_factor(c.rope), m1 / m2, 1e-15);
  EXPECT_NEAR(c.softmax_scale(), m2 * m2 / std::sqrt(16.0), 1e-15);
}

TEST(Rope, InterleavedEqualsDeinterleavedHalves) {
  // Rotating adjacent pairs and returning halves equals de-interleaving first, then rotating halves.
  at::Tensor x = at::randn({3, 8}, at::kDouble), cos = at::randn({3, 4}, at::kDouble),
             sin = at::randn({3, 4}, at::kDouble);
  at::Tensor deinterleaved = at::cat({x.slice(-1, 0, 8, 2), x.slice(-1, 1, 8, 2)}, -1);
  EXPECT_LT(max_abs_diff(apply_rope(x, cos, sin, true), apply_rope(deinterleaved, cos, sin, false)), 1e-15);
}

TEST(Moe, GroupedExpertsEqualPerTokenLoop) {
  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
  auto sd = m.state_dict();
  MoeWeights w;
  w.gate = sd.at("model.layers.1.mlp.gate.weight");
  w.e_score_correction_bias = sd.at("model.layers.1.mlp.gate.e_score_correction_bias");
  for (int e = 0; e < 8; ++e) {
    std::string p = "model.layers.1.mlp.experts." + std::to_string(e) + ".";
    w.experts.push_back({sd.at(p + "gate_proj.weight"), sd.at(p + "up_proj.weight"), sd.at(p + "down_proj.weight")});
  }
  at::Tensor x = at::randn({37, 32}, at::kDouble);
  Routing r = moe_gate(router_logits(w, x), w.e_score_correction_bias, GateSpec::from(c));
  at::Tensor got = routed_experts_forward(w, r, x);
  for (int64_t n = 0; n < 37; ++n) {
    at::Tensor want = at::zeros({32}, at::kDouble);
    for (int64_t k = 0; k < 3; ++k)
      want += r.weights[n][k] * mlp_forward(w.experts[r.experts[n][k].item<int64_t>()], x[n].unsqueeze(0))[0];
    EXPECT_LT(max_abs_diff(got[n], want), 1e-12) << n;
  }
}

}  // namespace

namespace {

TEST(Moe, LoadBalancingBiasUpdate) {
  // Loads 1, 5, 3, 3 (mean 3): the overloaded expert's bias goes down, the underloaded one's up.
  at::Tensor bias = at::zeros({4});
  at::Tensor got = balanced_bias(bias, at::tensor({1, 5, 3, 3}, at::kLong), 0.01);
  EXPECT_LT(max_abs_diff(got, at::tensor({0.01f, -0.01f, 0.0f, 0.0f})), 1e-9);

  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c);
  at::Tensor ids = random_ids(2, 16, c.vocab_size);
  std::vector<at::Tensor> load;
  at::NoGradGuard no_grad;
  at::Tensor logits = m.forward(ids, {}, nullptr, AttentionForm::kAuto, &load);
  EXPECT_EQ(max_abs_diff(logits, m.forward(ids)), 0.0);
  ASSERT_EQ(load.size(), 3u);
  EXPECT_FALSE(load[0].defined());  // dense layer
  EXPECT_EQ(load[1].sum().item<int64_t>(), 2 * 16 * c.num_experts_per_tok);
  at::Tensor before = m.state_dict().at("model.layers.1.mlp.gate.e_score_correction_bias").clone();
  m.update_correction_biases(load, 0.001);
  at::Tensor after = m.state_dict().at("model.layers.1.mlp.gate.e_score_correction_bias");
  EXPECT_LT(max_abs_diff(after - before, balanced_bias(at::zeros({8}), load[1], 0.001)), 1e-7);  // fp32 bias
}

TEST(Moe, PositionsOutsideTheTokenMaskSkipTheRoutedExperts) {
  // Row 1 is real up to position 9 and padded after: with the mask, its real positions' hidden
  // states and every layer's expert load equal those of the rows run separately, cut to their length.
  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
  at::NoGradGuard no_grad;
  const at::Tensor ids = random_ids(2, 16, c.vocab_size);
  at::Tensor tokens = at::ones({2, 16}, at::kBool);
  tokens[1].narrow(0, 9, 7).fill_(false);
  std::vector<at::Tensor> load, load0, load1;
  const at::Tensor h = m.hidden_states(ids, {}, nullptr, AttentionForm::kAuto, &load, tokens);  // [2, 16, D]
  const at::Tensor h0 = m.hidden_states(ids.narrow(0, 0, 1), {}, nullptr, AttentionForm::kAuto, &load0);
  const at::Tensor h1 = m.hidden_states(ids.narrow(0, 1, 1).narrow(1, 0, 9), {}, nullptr, AttentionForm::kAuto, &load1);
  EXPECT_LT(max_abs_diff(h[0], h0[0]), 1e-12);
  EXPECT_LT(max_abs_diff(h[1].narrow(0, 0, 9), h1[0]), 1e-12);
  for (size_t l = 1; l < load.size(); ++l) EXPECT_TRUE(at::equal(load[l], load0[l] + load1[l])) << "layer " << l;
  EXPECT_EQ(load[1].sum().item<int64_t>(), (16 + 9) * c.num_experts_per_tok);
}

}  // namespace
