// Expert parallelism on c10d Gloo (learner/distributed.h, learner/expert_parallel.h, `grpo learner`):
// * launch environment errors name the variable;
// * device-limited routing: with n_group groups nested in the ranks, a token reaches at most
//   topk_group ranks (and more without the group limit);
// * the all-to-all dispatch/combine on 2 and 4 ranks (threads of this process, real Gloo over
//   loopback) equals routed_experts_forward in fp64, outputs and gradients (input, router, experts);
// * end to end (real processes): EP=1, 2, 4 and 2 "hosts" × 2 ranks train the same losses, grad
//   norms and weights (1e-5, fp32) over several AdamW steps; a rank killed with SIGKILL makes the
//   others stop with an error naming the failed collective, and the run resumes from its last
//   checkpoint to the same weights as an uninterrupted run;
// * ZeRO-1 (learner/zero1.h): on 3 ranks (threads) the sharded AdamW plus all-gather equals one
//   whole AdamW in fp64 (weights and moments, 1e-12); end to end, EP=2 and 4 with pretrain.zero1
//   equal the same EP without it (1e-6, weight decay and clipping on), each rank's optimizer state is its
//   experts' and its share of the replicated moments, and a killed ZeRO-1 run resumes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "learner/distributed.h"
#include "learner/expert_parallel.h"
#include "learner/optim.h"
#include "learner/zero1.h"
#include "learner_ep_testutil.h"
#include "model/checkpoint.h"
#include "model/deepseek.h"
#include "model/init.h"
#include "model/moe.h"
#include "model/moe_gate.h"

namespace grpo {
namespace {

using testing::free_port;
using testing::Learner;
using testing::on_ranks;

// Sets environment variables for one scope, restoring the old values.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, const char*>& vars) {
    for (const auto& [k, v] : vars) {
      const char* old = getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
      v ? setenv(k.c_str(), v, 1) : unsetenv(k.c_str());
    }
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) v ? setenv(k.c_str(), v->c_str(), 1) : unsetenv(k.c_str());
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

void expect_env_error(const std::map<std::string, const char*>& vars, const std::string& needle) {
  ScopedEnv env(vars);
  try {
    DistEnv::from_env();
    ADD_FAILURE() << "no error for " << needle;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DistEnv, ReadsTheTorchrunVariablesAndNamesABadOne) {
  {
    ScopedEnv env({{"RANK", "3"},
                   {"WORLD_SIZE", "4"},
                   {"LOCAL_RANK", "1"},
                   {"MASTER_ADDR", "10.0.0.7"},
                   {"MASTER_PORT", "29600"}});
    const DistEnv e = DistEnv::from_env();
    EXPECT_EQ(e.rank, 3);
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.local_rank, 1);
    EXPECT_EQ(e.master_addr, "10.0.0.7");
    EXPECT_EQ(e.master_port, 29600);
  }
  expect_env_error({{"RANK", nullptr}, {"WORLD_SIZE", "2"}}, "RANK is not set");
  expect_env_error({{"RANK", "0"}, {"WORLD_SIZE", nullptr}}, "WORLD_SIZE is not set");
  expect_env_error({{"RANK", "0"}, {"WORLD_SIZE", "two"}}, "WORLD_SIZE=\"two\" is not an integer");
  expect_env_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK=2 outside [0, WORLD_SIZE=2)");
  expect_env_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=70000");
}

// Device-limited routing: 8 experts in 4 groups on 4 ranks (one group a rank), topk_group 2.
TEST(ExpertParallel, GroupLimitedRoutingBoundsTheRanksATokenReaches) {
  at::manual_seed(5);
  const at::Tensor logits = at::randn({512, 8}, at::kFloat);
  const at::Tensor bias = at::randn({8}, at::kFloat) * 0.1;
  GateSpec spec;
  spec.top_k = 4;
  spec.n_group = 4;
  spec.topk_group = 2;
  const at::Tensor limited = ranks_per_token(moe_gate(logits, bias, spec).experts, 8, 4);
  EXPECT_EQ(limited.max().item<int64_t>(), 2);
  EXPECT_GE(limited.min().item<int64_t>(), 1);
  // Two groups a rank (EP=2, n_group=4): topk_group 1 keeps every token on one rank.
  spec.topk_group = 1;
  spec.top_k = 2;
  EXPECT_EQ(ranks_per_token(moe_gate(logits, bias, spec).experts, 8, 2).max().item<int64_t>(), 1);
  // Without the group limit the same top-4 reaches 3 or 4 ranks for some tokens.
  spec.n_group = 1;
  spec.topk_group = 1;
  spec.top_k = 4;
  EXPECT_GT(ranks_per_token(moe_gate(logits, bias, spec).experts, 8, 4).max().item<int64_t>(), 2);
}

// An expert-sharded model holds only its experts (under their global names), takes them from a
// whole model's state, and refuses an EP size that does not divide the experts.
TEST(ExpertParallel, ShardedModelHoldsItsExpertsAndLoadsFromTheWholeModel) {
  const nlohmann::json c = {{"architectures", {"DeepseekV3ForCausalLM"}},
                            {"model_type", "deepseek_v3"},
                            {"vocab_size", 40},
                            {"hidden_size", 16},
                            {"intermediate_size", 24},
                            {"moe_intermediate_size", 8},
                            {"num_hidden_layers", 2},
                            {"first_k_dense_replace", 1},
                            {"num_attention_heads", 2},
                            {"q_lora_rank", nullptr},
                            {"kv_lora_rank", 8},
                            {"qk_nope_head_dim", 4},
                            {"qk_rope_head_dim", 4},
                            {"v_head_dim", 4},
                            {"n_routed_experts", 8},
                            {"n_shared_experts", 1},
                            {"num_experts_per_tok", 2},
                            {"n_group", 1},
                            {"topk_group", 1}};
  const ModelConfig config = ModelConfig::from_json(c, "test");
  DeepseekModel whole(config);
  init_weights(whole, 3);
  ModelOptions o;
  o.expert_rank = 1;
  o.expert_ranks = 4;
  DeepseekModel shard(config, o);
  std::set<std::string> names;
  for (auto& [name, t] : shard.named_parameters()) names.insert(name);
  EXPECT_TRUE(names.count("model.layers.1.mlp.experts.2.up_proj.weight"));
  EXPECT_TRUE(names.count("model.layers.1.mlp.experts.3.down_proj.weight"));
  EXPECT_FALSE(names.count("model.layers.1.mlp.experts.4.up_proj.weight"));
  EXPECT_FALSE(names.count("model.layers.1.mlp.experts.1.up_proj.weight"));
  EXPECT_TRUE(names.count("model.layers.1.mlp.gate.weight"));
  shard.load_state(whole.state_dict(), "whole");
  EXPECT_TRUE(shard.state_dict()
                  .at("model.layers.1.mlp.experts.3.gate_proj.weight")
                  .equal(whole.state_dict().at("model.layers.1.mlp.experts.3.gate_proj.weight")));
  EXPECT_THROW(shard.forward(at::zeros({1, 3}, at::kLong)), std::logic_error);  // no runner installed
  o.expert_ranks = 3;
  o.expert_rank = 0;
  try {
    DeepseekModel bad(config, o);
    ADD_FAILURE() << "8 experts on 3 ranks accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not divisible by the 3 expert-parallel ranks"), std::string::npos)
        << e.what();
  }
}

MlpWeights random_mlp(int64_t d, int64_t inter) {
  return {{at::randn({inter, d}, at::kDouble) * 0.3, {}},
          {at::randn({inter, d}, at::kDouble) * 0.3, {}},
          {at::randn({d, inter}, at::kDouble) * 0.3, {}}};
}

// Dispatch + experts + combine on EP ranks vs all experts in one process, fp64: the outputs, and the
// gradients of the input tokens, the router and every expert (summed over the ranks' tokens).
void check_dispatch_combine(int world) {
  const int64_t experts = 8, d = 6, inter = 5, tokens = 12;  // 12 tokens a rank
  at::manual_seed(11);
  MoeWeights whole;
  whole.gate = at::randn({experts, d}, at::kDouble);
  for (int64_t e = 0; e < experts; ++e) whole.experts.push_back(random_mlp(d, inter));
  const at::Tensor x_all = at::randn({tokens * world, d}, at::kDouble);
  const at::Tensor up = at::randn({tokens * world, d}, at::kDouble);  // d loss / d output
  GateSpec spec;
  spec.top_k = 3;
  spec.n_group = 4;
  spec.topk_group = 2;

  auto leaf = [](const at::Tensor& t) { return t.detach().clone().requires_grad_(true); };
  // Reference: every token, every expert, one process.
  MoeWeights ref = whole;
  ref.gate = leaf(whole.gate);
  for (auto& m : ref.experts)
    for (Linear* l : {&m.gate_proj, &m.up_proj, &m.down_proj}) l->weight = leaf(l->weight);
  at::Tensor x_ref = leaf(x_all);
  const at::Tensor y_ref = routed_experts_forward(ref, moe_gate(router_logits(ref, x_ref), {}, spec), x_ref);
  (y_ref * up).sum().backward();

  on_ranks(world, [&](Distributed& dist) {
    const int r = dist.rank();
    const int64_t local = experts / world;
    MoeWeights mine;
    mine.gate = leaf(whole.gate);
    mine.first_expert = r * local;
    for (int64_t e = 0; e < local; ++e) {
      MlpWeights m = whole.experts[r * local + e];
      for (Linear* l : {&m.gate_proj, &m.up_proj, &m.down_proj}) l->weight = leaf(l->weight);
      mine.experts.push_back(m);
    }
    at::Tensor x = leaf(x_all.narrow(0, r * tokens, tokens));
    const ExpertParallel ep(dist);
    const at::Tensor y = ep.forward(mine, moe_gate(router_logits(mine, x), {}, spec), x);
    (y * up.narrow(0, r * tokens, tokens)).sum().backward();
    EXPECT_LT((y - y_ref.narrow(0, r * tokens, tokens)).abs().max().item<double>(), 1e-12) << "rank " << r;
    EXPECT_LT((x.grad() - x_ref.grad().narrow(0, r * tokens, tokens)).abs().max().item<double>(), 1e-12);
    for (int64_t e = 0; e < local; ++e)
      for (auto [got, want] : {std::pair{&mine.experts[e].gate_proj, &ref.experts[r * local + e].gate_proj},
                               std::pair{&mine.experts[e].down_proj, &ref.experts[r * local + e].down_proj}}) {
        ASSERT_TRUE(want->weight.grad().defined());
        EXPECT_LT((got->weight.grad() - want->weight.grad()).abs().max().item<double>(), 1e-12)
            << "rank " << r << " expert " << r * local + e;
      }
    // The router is replicated: its gradients summed over ranks are the reference's.
    at::Tensor gate_grad = mine.gate.grad().clone();
    dist.all_reduce_sum(gate_grad);
    EXPECT_LT((gate_grad - ref.gate.grad()).abs().max().item<double>(), 1e-12);
  });
}

TEST(ExpertParallel, DispatchCombineMatchesLocalExpertsOnTwoRanks) { check_dispatch_combine(2); }
TEST(ExpertParallel, DispatchCombineMatchesLocalExpertsOnFourRanks) { check_dispatch_combine(4); }

// ---- ZeRO-1 -----------------------------------------------------------------------------------

std::vector<std::pair<std::string, at::Tensor>> zero1_params(const std::vector<at::Tensor>& init) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < init.size(); ++i)
    out.emplace_back("p" + std::to_string(i), init[i].clone().requires_grad_(true));
  return out;
}

// The ranks' ranges are balanced, cover every element once, and their slices are the flattened
// parameters in order (ranges that start and end inside a parameter included).
TEST(Zero1, RangesAreBalancedAndTheirSlicesTileTheParameters) {
  const auto params = zero1_params({at::randn({5, 4}), at::randn({7}), at::randn({3, 3}), at::randn({1})});
  std::vector<at::Tensor> flat;
  for (const auto& [name, p] : params) flat.push_back(p.detach().reshape({-1}));
  const at::Tensor whole = at::cat(flat);  // [37]
  for (int world : {1, 2, 3, 5, 37}) {
    const std::vector<int64_t> b = balanced_bounds(whole.numel(), world);
    ASSERT_EQ(b.size(), size_t(world) + 1);
    EXPECT_EQ(b.front(), 0);
    EXPECT_EQ(b.back(), whole.numel());
    std::vector<at::Tensor> pieces;
    for (int r = 0; r < world; ++r) {
      EXPECT_LE(std::abs((b[r + 1] - b[r]) - whole.numel() / world), 1) << world << " ranks, rank " << r;
      for (const ParamSlice& s : slices_in(params, b[r], b[r + 1]))
        pieces.push_back(s.of(s.param.detach()).reshape({-1}));
    }
    EXPECT_TRUE(at::cat(pieces).equal(whole)) << world << " ranks";
  }
}

// 3 ranks (37 elements: ranges of 12, 12, 13 cut through parameters), fp64, weight decay on:
// after every step and all-gather, every rank's parameters equal one whole AdamW's, and each
// rank's moments are the whole AdamW's moments on its range.
TEST(Zero1, ShardedAdamWEqualsWholeAdamWOnThreeRanks) {
  at::manual_seed(21);
  const std::vector<at::Tensor> init = {at::randn({5, 4}, at::kDouble), at::randn({7}, at::kDouble),
                                        at::randn({3, 3}, at::kDouble), at::randn({1}, at::kDouble)};
  std::vector<std::vector<at::Tensor>> grads;  // per step, per parameter
  for (int step = 0; step < 4; ++step) {
    grads.emplace_back();
    for (const auto& t : init) grads.back().push_back(at::randn_like(t));
  }
  AdamWOptions o;
  o.weight_decay = 0.1;
  on_ranks(3, [&](Distributed& dist) {
    const auto mine = zero1_params(init), ref = zero1_params(init);
    Zero1 zero(dist, mine);
    AdamW sharded(zero.owned(), o), whole(ref, o);
    for (size_t step = 0; step < grads.size(); ++step) {
      for (size_t i = 0; i < init.size(); ++i) {
        mine[i].second.mutable_grad() = grads[step][i].clone();
        ref[i].second.mutable_grad() = grads[step][i].clone();
      }
      sharded.step(1e-2);
      whole.step(1e-2);
      zero.all_gather();
      for (size_t i = 0; i < init.size(); ++i)
        EXPECT_LT((mine[i].second - ref[i].second).abs().max().item<double>(), 1e-12)
            << "rank " << dist.rank() << " step " << step << " " << mine[i].first;
    }
    const auto got = sharded.state(), want = whole.state();
    int64_t owned = 0;
    for (const ParamSlice& s : zero.owned()) {
      owned += s.size;
      for (const char* m : {".exp_avg", ".exp_avg_sq"})
        EXPECT_LT((got.at(s.key() + m) - s.of(want.at(s.name + m))).abs().max().item<double>(), 1e-12) << s.key() << m;
    }
    const std::vector<int64_t> b = balanced_bounds(37, 3);
    EXPECT_EQ(owned, b[dist.rank() + 1] - b[dist.rank()]);
    EXPECT_EQ(sharded.state_bytes(), 2 * 8 * owned);  // exp_avg and exp_avg_sq, fp64
    // The state of a rank's slices goes back in; a whole parameter's state is not a slice's.
    AdamW again(zero.owned(), o);
    again.load_state(got, "sharded");
    EXPECT_EQ(again.steps(), 4);
    EXPECT_THROW(AdamW(zero.owned(), o).load_state(want, "whole"), InputError);
  });
}

// ---- end to end: `grpo learner` -------------------------------------------------------------

TEST_F(Learner, OneTwoAndFourRanksTrainTheSameModel) {
  std::string out;
  for (int n : {1, 2, 4}) {
    ASSERT_EQ(shell(learner_cmd("ep" + std::to_string(n),
                                "--nproc " + std::to_string(n) + " --master-port " + std::to_string(free_port())),
                    &out),
              0);
    const auto summary = nlohmann::json::parse(out);
    EXPECT_EQ(summary.at("world_size").get<int>(), n);
    EXPECT_EQ(summary.at("steps").get<int>(), 4);
    if (n > 1) EXPECT_GT(summary.at("all_to_all_bytes").get<int64_t>(), 0);
  }
  // The weights moved, and the experts really are sharded: rank r's file holds experts 2r, 2r+1.
  const auto start = series("ep1", "loss");
  EXPECT_GT(start.front(), start.back());
  const nlohmann::json index = nlohmann::json::parse(std::ifstream(dir_ + "/ep4/model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"]["model.layers.1.mlp.experts.5.up_proj.weight"], "model-00003-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["model.layers.1.self_attn.o_proj.weight"], "model-00001-of-00004.safetensors");
  // Rank 0 added the tokenizer's files: the checkpoint loads on its own (generate, eval, HF).
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/ep4/" + f)) << f;
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir_ + "/ep4/generation_config.json"))["eos_token_id"], 1);
  expect_same_run("ep1", "ep2");
  expect_same_run("ep1", "ep4");
}

TEST_F(Learner, TwoHostsOfTwoRanksEqualOneRank) {
  const std::string port = std::to_string(free_port());
  const std::string flags = "--nproc 2 --nnodes 2 --master-addr 127.0.0.1 --master-port " + port;
  // Two launchers, as on two hosts; the second one's output goes to a file (only rank 0 prints).
  ASSERT_EQ(shell(learner_cmd("hosts", flags + " --node-rank 1") + " > /dev/null & other=$!; " +
                  learner_cmd("hosts", flags + " --node-rank 0") + "; first=$?; wait $other; exit $((first | $?))"),
            0);
  ASSERT_EQ(shell(learner_cmd("one", "--nproc 1 --master-port " + std::to_string(free_port()))), 0);
  expect_same_run("one", "hosts");
}

// A rank killed with SIGKILL: the other stops with an error naming the failed collective; the run
// resumes from its last checkpoint and ends with the weights of a run that was never interrupted.
// `extra`: more overrides for every run (pretrain.zero1=true).
void kill_and_resume(Learner& t, const std::string& extra) {
  const std::string run = " pretrain.steps=6 pretrain.batch_size=16 pretrain.save_every=2" + extra;
  const std::string& dir = t.dir();
  const std::string state = dir + "/faulty/learner_state.json";
  testing::kill_rank_one_when(t.learner_cmd("faulty", "", run), state);
  if (::testing::Test::HasFatalFailure()) return;
  const int saved = nlohmann::json::parse(std::ifstream(state)).at("step").get<int>();
  EXPECT_LT(saved, 6);

  std::string out, err;
  ASSERT_EQ(t.shell(t.learner_cmd("faulty", "--nproc 2 --master-port " + std::to_string(free_port()),
                                  run + " pretrain.resume=true"),
                    &out, &err),
            0);
  EXPECT_NE(err.find("resuming from step " + std::to_string(saved)), std::string::npos) << err;
  EXPECT_EQ(nlohmann::json::parse(out).at("steps").get<int>(), 6);
  ASSERT_EQ(t.shell(t.learner_cmd("whole", "--nproc 2 --master-port " + std::to_string(free_port()), run)), 0);
  const auto a = load_weights(dir + "/faulty"), b = load_weights(dir + "/whole");
  double worst = 0;
  for (const auto& [name, w] : a) worst = std::max(worst, (w - b.at(name)).abs().max().item<double>());
  EXPECT_LT(worst, 1e-6);
  // A checkpoint of another world size is refused, naming why.
  EXPECT_EQ(t.shell(t.learner_cmd("whole", "--nproc 1 --master-port " + std::to_string(free_port()),
                                  run + " pretrain.resume=true"),
                    nullptr, &err, /*may_fail=*/true),
            1);
  EXPECT_NE(err.find("was written by 2 ranks, this run has 1"), std::string::npos) << err;
}

TEST_F(Learner, AKilledRankStopsTheOthersAndTheRunResumes) { kill_and_resume(*this, ""); }

TEST_F(Learner, AKilledZero1RunResumes) {
  kill_and_resume(*this, " pretrain.zero1=true");
  // Its checkpoint holds sharded moments: a run without ZeRO-1 refuses it, naming why.
  std::string err;
  EXPECT_EQ(shell(learner_cmd("whole", "--nproc 2 --master-port " + std::to_string(free_port()),
                              " pretrain.steps=6 pretrain.batch_size=16 pretrain.resume=true"),
                  nullptr, &err, /*may_fail=*/true),
            1);
  EXPECT_NE(err.find("was written with pretrain.zero1=true, this run has pretrain.zero1=false"), std::string::npos)
      << err;
}

// Bytes of AdamW moments (fp32 exp_avg and exp_avg_sq) per rank of a saved EP run: replicated
// elements (all of them, or with ZeRO-1 the rank's balanced range) plus the rank's experts.
std::vector<int64_t> expected_state_bytes(const std::string& dir, int world, int64_t experts, bool zero1) {
  int64_t replicated = 0;
  std::vector<int64_t> expert(world, 0);
  for (const auto& [name, t] : load_weights(dir)) {
    const size_t at = name.find(".mlp.experts.");
    if (at != std::string::npos)
      expert[std::stoll(name.substr(at + 13)) / (experts / world)] += t.numel();
    else if (name.find("e_score_correction_bias") == std::string::npos)  // a buffer, not trained
      replicated += t.numel();
  }
  std::vector<int64_t> bytes;
  for (int r = 0; r < world; ++r) {
    const int64_t mine = zero1 ? replicated * (r + 1) / world - replicated * r / world : replicated;
    bytes.push_back(2 * 4 * (mine + expert[r]));
  }
  return bytes;
}

// EP=2 and EP=4 with ZeRO-1 equal the same EP without it over 4 AdamW steps with weight decay and
// clipping on (every step's norm above grad_clip), and keep 1/EP of the replicated moments a rank.
TEST_F(Learner, Zero1EqualsUnshardedOnTwoAndFourRanks) {
  const std::string optim = " pretrain.optim.weight_decay=0.1 pretrain.optim.grad_clip=0.5";
  for (int world : {2, 4}) {
    const std::string plain = "plain" + std::to_string(world), zero1 = "zero1" + std::to_string(world);
    std::map<bool, std::vector<int64_t>> bytes;
    for (bool on : {false, true}) {
      std::string out;
      ASSERT_EQ(shell(learner_cmd(on ? zero1 : plain,
                                  "--nproc " + std::to_string(world) + " --master-port " + std::to_string(free_port()),
                                  optim + (on ? " pretrain.zero1=true" : "")),
                      &out),
                0);
      bytes[on] = nlohmann::json::parse(out).at("optimizer_state_bytes").get<std::vector<int64_t>>();
      EXPECT_EQ(bytes[on], expected_state_bytes(dir_ + "/" + plain, world, 8, on)) << world << " ranks";
    }
    for (double norm : series(plain, "grad_norm")) EXPECT_GT(norm, 0.5);  // clipping was active
    expect_same_run(plain, zero1, 1e-6);
    for (int r = 0; r < world; ++r) EXPECT_LT(bytes[true][r], bytes[false][r]);
    std::cerr << world << " ranks: optimizer state bytes a rank " << bytes[false][0] << " -> " << bytes[true][0]
              << " with ZeRO-1\n";
  }
}

}  // namespace
}  // namespace grpo
