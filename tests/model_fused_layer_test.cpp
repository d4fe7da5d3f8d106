// model/fused_layer.h: the fused no-grad decoder layer equals the op-by-op path bit for bit —
// logits, routes and the router's own choice — in fp32, bf16 and FP8 weights, for whole
// sequences, for a cache fed in chunks and one token at a time, under routing replay, and for the
// config variants the layer reads differently (no q_lora, halves rope, no shared expert, V2's
// softmax gate, grouped routing). Also the no-grad kernels it shares with that path: the RMSNorm
// kernel against an fp64 norm and row by row, and the row gate against the ATen gate.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/bf16.h"
#include "model/fused_layer.h"
#include "model/moe_gate.h"
#include "model/rms_norm.h"
#include "model_test_util.h"

namespace grpo {
namespace {

using grpo::testing::random_ids;
using grpo::testing::random_model;
using grpo::testing::small_like_config;
using grpo::testing::tiny_config;

// Runs the op-by-op path while it lives.
struct OpByOp {
  OpByOp() { set_fused_layers(false); }
  ~OpByOp() { set_fused_layers(true); }
  OpByOp(const OpByOp&) = delete;
  OpByOp& operator=(const OpByOp&) = delete;
};

struct Result {
  at::Tensor logits;
  std::vector<at::Tensor> routes, chosen, load;
};

Result run(const DeepseekModel& m, const at::Tensor& ids, LatentContext* context = nullptr,
           const at::Tensor& replay = {}, const std::vector<int64_t>& packed = {}) {
  at::NoGradGuard no_grad;
  Result r;
  Feed feed;
  feed.context = context;
  feed.routes = &r.routes;
  feed.router_choice = &r.chosen;
  feed.expert_load = &r.load;
  feed.replay = replay;
  feed.packed = packed;
  r.logits = m.logits(ids, feed);
  return r;
}

void expect_same(const Result& fused, const Result& plain, const std::string& what) {
  ASSERT_EQ(fused.logits.sizes(), plain.logits.sizes()) << what;
  EXPECT_TRUE(at::equal(fused.logits, plain.logits))
      << what << ": max |diff| " << (fused.logits - plain.logits).abs().max().item<double>();
  ASSERT_EQ(fused.routes.size(), plain.routes.size()) << what;
  for (size_t i = 0; i < fused.routes.size(); ++i) {
    EXPECT_EQ(fused.routes[i].defined(), plain.routes[i].defined()) << what << " layer " << i;
    if (fused.routes[i].defined()) {
      EXPECT_TRUE(at::equal(fused.routes[i], plain.routes[i])) << what << " routes, layer " << i;
      EXPECT_TRUE(at::equal(fused.chosen[i], plain.chosen[i])) << what << " router choice, layer " << i;
      EXPECT_TRUE(at::equal(fused.load[i], plain.load[i])) << what << " expert load, layer " << i;
    }
  }
}

ModelOptions options_for(const std::string& dtype) { return ModelOptions::for_dtype(dtype); }

// Whole sequences, then the same ids through a cache: a prefill chunk, then one token at a time.
void check_model(const ModelConfig& c, const std::string& dtype, const std::string& what) {
  // FP8 weights are quantised from a float model's (init_weights makes float models only).
  const DeepseekModel m = grpo::testing::copied_with(random_model(c), options_for(dtype));
  const at::Tensor ids = random_ids(3, 11, c.vocab_size);
  {
    // The fused path is the one that runs (else this test would compare a path with itself).
    const at::Tensor x = at::zeros({3, 11, c.hidden_size}, at::TensorOptions().dtype(m.options().compute_dtype));
    at::NoGradGuard no_grad;
    EXPECT_TRUE(fused_layer_applies(m.layers()[1], x, AttentionForm::kAuto, false, false)) << what;
  }
  const Result fused = run(m, ids);
  Result plain;
  {
    OpByOp off;
    plain = run(m, ids);
  }
  expect_same(fused, plain, what + ", whole sequences");

  LatentCache fused_cache = m.make_cache(3, 16), plain_cache = m.make_cache(3, 16);
  for (int64_t start = 0; start < 11;) {
    const int64_t n = start == 0 ? 5 : 1;
    const at::Tensor chunk = ids.narrow(1, start, n);
    const Result f = run(m, chunk, &fused_cache);
    Result p;
    {
      OpByOp off;
      p = run(m, chunk, &plain_cache);
    }
    expect_same(f, p, what + ", cached chunk at " + std::to_string(start));
    start += n;
  }
}

TEST(FusedLayer, EqualsTheOpByOpPathInEveryDtype) {
  for (const std::string dtype : {"fp32", "bf16", "fp8"}) check_model(small_like_config(), dtype, dtype);
}

TEST(FusedLayer, EqualsTheOpByOpPathForEveryConfigVariant) {
  check_model(tiny_config(), "fp32", "grouped routing (n_group 4)");
  check_model(small_like_config({{"q_lora_rank", nullptr}}), "bf16", "no q_lora");
  check_model(small_like_config({{"rope_interleave", false}}), "bf16", "halves rope");
  check_model(small_like_config({{"n_shared_experts", 0}}), "fp32", "no shared expert");
  check_model(small_like_config({{"model_type", "deepseek_v2"},
                                 {"architectures", {"DeepseekV2ForCausalLM"}},
                                 {"topk_method", "greedy"},
                                 {"scoring_func", "softmax"},
                                 {"norm_topk_prob", false},
                                 {"routed_scaling_factor", 1.0}}),
              "fp32", "V2 softmax gate");
  check_model(small_like_config({{"hidden_size", 60}, {"kv_lora_rank", 29}, {"q_lora_rank", 21}}), "fp32",
              "widths off the 8-lane grid");
}

TEST(FusedLayer, EqualsTheOpByOpPathForPackedSequences) {
  // Sequences of 4, 1 and 6 tokens back to back in one row (the trainer's scoring).
  const ModelConfig c = small_like_config();
  for (const std::string dtype : {"fp32", "bf16"}) {
    const DeepseekModel m = random_model(c, options_for(dtype));
    const at::Tensor ids = random_ids(1, 11, c.vocab_size, 13);
    const Result fused = run(m, ids, nullptr, {}, {4, 1, 6});
    Result plain;
    {
      OpByOp off;
      plain = run(m, ids, nullptr, {}, {4, 1, 6});
    }
    expect_same(fused, plain, dtype + ", packed");
    // And each sequence alone gives its packed logits (attention stays inside each sequence).
    EXPECT_TRUE(at::equal(run(m, ids.narrow(1, 4, 1)).logits, fused.logits.narrow(1, 4, 1))) << dtype;
    EXPECT_TRUE(at::equal(run(m, ids.narrow(1, 5, 6)).logits, fused.logits.narrow(1, 5, 6))) << dtype;
  }
}

TEST(FusedLayer, EqualsTheOpByOpPathUnderRoutingReplay) {
  const ModelConfig c = small_like_config();
  const DeepseekModel m = random_model(c, options_for("bf16"));
  const at::Tensor ids = random_ids(2, 9, c.vocab_size, 11);
  // Replay another model's routes on half of the positions (-1 elsewhere: the router's choice).
  const Result other = run(random_model(c, options_for("bf16"), 99), ids);
  std::vector<at::Tensor> layers;
  for (const at::Tensor& r : other.routes)
    if (r.defined()) layers.push_back(r.view({2, 9, 1, -1}));
  at::Tensor replay = at::cat(layers, 2);  // [B, T, L_moe, k]
  replay.narrow(1, 0, 4).fill_(-1);
  const Result fused = run(m, ids, nullptr, replay);
  Result plain;
  {
    OpByOp off;
    plain = run(m, ids, nullptr, replay);
  }
  expect_same(fused, plain, "replay");
  // The replayed positions went through the other model's experts.
  EXPECT_TRUE(
      at::equal(fused.routes[1].view({2, 9, -1}).narrow(1, 4, 5), other.routes[1].view({2, 9, -1}).narrow(1, 4, 5)));
}

TEST(RmsNormKernel, CloseToFp64AndEachRowAlone) {
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  for (int64_t d : {1, 7, 8, 37, 512}) {
    const at::Tensor x = at::randn({9, d}, gen) * 3, w = at::randn({d}, gen);
    const at::Tensor all = rms_norm(x, w, 1e-6);
    const at::Tensor xd = x.to(at::kDouble);
    const at::Tensor want = w.to(at::kDouble) * xd * at::rsqrt(xd.pow(2).mean(-1, true) + 1e-6);
    EXPECT_LT((all.to(at::kDouble) - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>()) << d;
    for (int64_t r = 0; r < 9; ++r) EXPECT_TRUE(at::equal(rms_norm(x.narrow(0, r, 1), w, 1e-6), all.narrow(0, r, 1)));
    // bf16: within bf16's rounding of the fp64 norm, and the kernel's two roundings exactly.
    const at::Tensor xb = x.to(at::kBFloat16), wb = w.to(at::kBFloat16);
    const at::Tensor b = rms_norm(xb, wb, 1e-6);
    ASSERT_EQ(b.scalar_type(), at::kBFloat16);
    const at::Tensor xbd = xb.to(at::kDouble);
    const at::Tensor wantb = wb.to(at::kDouble) * xbd * at::rsqrt(xbd.pow(2).mean(-1, true) + 1e-6);
    EXPECT_LT((b.to(at::kDouble) - wantb).abs().max().item<double>(), 1.6e-2 * wantb.abs().max().item<double>()) << d;
  }
  // Under grad mode: ATen's differentiable ops, close to the kernel.
  const at::Tensor x = at::randn({4, 37}, gen), w = at::randn({37}, gen).requires_grad_(true);
  at::Tensor g;
  {
    at::AutoGradMode grad(true);
    g = rms_norm(x, w, 1e-6);
    EXPECT_TRUE(g.requires_grad());
  }
  EXPECT_LT((g.detach() - rms_norm(x, w.detach(), 1e-6)).abs().max().item<double>(), 1e-5);
}

TEST(RoundToBf16, EqualsLibTorchsCastBitForBit) {
  // Random floats over every exponent, ties, the largest finite values, infinities, NaNs, subnormals:
  // the same bits as LibTorch's cast.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const at::Tensor bits = at::randint(0, int64_t{1} << 32, {200000}, gen, at::TensorOptions().dtype(at::kLong));
  std::vector<float> values;
  for (int64_t i = 0; i < bits.size(0); ++i) {
    const uint32_t u = static_cast<uint32_t>(bits[i].item<int64_t>());
    float f;
    std::memcpy(&f, &u, sizeof f);
    values.push_back(f);
  }
  for (uint32_t u : {0x3F808000u, 0x3F818000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x7F800000u, 0xFF800000u, 0x7FC00001u,
                     0xFFFFFFFFu, 0x00000001u, 0x80008000u, 0x007FFFFFu, 0x00000000u, 0x80000000u}) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    values.push_back(f);
  }
  const at::Tensor in = at::tensor(values);
  const at::Tensor want = in.to(at::kBFloat16).to(at::kFloat);
  for (size_t i = 0; i < values.size(); ++i) {
    const float got = kernels::round_to_bf16(values[i]), expect = want[static_cast<int64_t>(i)].item<float>();
    if (std::isnan(values[i])) {  // NaN stays NaN (LibTorch's own vector and scalar casts write different NaN bits)
      ASSERT_TRUE(std::isnan(got));
      continue;
    }
    uint32_t a, b;
    std::memcpy(&a, &got, sizeof a);
    std::memcpy(&b, &expect, sizeof b);
    ASSERT_EQ(a, b) << "input bits " << std::hex << [&] {
      uint32_t u;
      std::memcpy(&u, &values[i], sizeof u);
      return u;
    }();
  }
}

TEST(RowGate, MatchesTheATenGate) {
  // The row gate (no grad mode, sigmoid, one group) against the ATen gate (grad mode): the same
  // experts, weights within fp32 rounding; replay_gate of its own choice gives its weights exactly.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(8);
  const at::Tensor logits = at::randn({40, 16}, gen), bias = at::randn({16}, gen) * 0.3;
  GateSpec spec = GateSpec::from(small_like_config());
  Routing rows;
  {
    at::NoGradGuard no_grad;
    rows = moe_gate(logits, bias, spec);
    const Routing again = replay_gate(logits, rows.experts, spec);
    EXPECT_TRUE(at::equal(again.weights, rows.weights));
  }
  at::AutoGradMode grad(true);
  const Routing aten = moe_gate(logits, bias, spec);
  EXPECT_TRUE(at::equal(rows.experts, aten.experts));
  EXPECT_LT((rows.weights - aten.weights.detach()).abs().max().item<double>(), 1e-6);
  // A replayed id outside [0, E) is an error naming it, not a read past the row.
  at::NoGradGuard no_grad;
  at::Tensor bad = rows.experts.clone();
  bad[3][1] = 16;
  EXPECT_THROW(replay_gate(logits, bad, spec), InputError);
}

}  // namespace
}  // namespace grpo
