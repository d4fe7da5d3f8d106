// FP8 inference weights: block dequantisation into a buffer, an FP8 model equal to a bf16 model
// holding the dequantised weights, the FP8-vs-bf16 log-prob gap (loosely bounded), the raw load
// path that keeps checkpoint codes as they are, load errors, and the engine on FP8 weights.
#include <gtest/gtest.h>

#include <limits>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/fp8.h"
#include "model_ckpt_testutil.h"
#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

TEST(Fp8Weights, DequantiseIntoABufferEqualsTheReference) {
  at::Tensor w = at::randn({300, 200}) * 3;  // partial blocks on both edges
  Fp8Blocks b = quantize_fp8_blocks(w);
  at::Tensor ref = dequantize_fp8_blocks(b.q, b.scale);
  for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kDouble}) {
    at::Tensor out = at::empty({300, 200}, at::TensorOptions().dtype(t));
    dequantize_fp8_blocks_into(b.q, b.scale, out);
    EXPECT_TRUE(at::equal(out, ref.to(t))) << c10::toString(t);
  }
  at::Tensor out = at::empty({300, 200});
  EXPECT_THROW(dequantize_fp8_blocks_into(b.q, b.scale.narrow(1, 0, 1).contiguous(), out), InputError);
}

// An fp32 model whose linear weights are the FP8 model's, dequantised.
DeepseekModel dequantised_fp32(const ModelConfig& c, const DeepseekModel& dense) {
  std::map<std::string, at::Tensor> state = dense.state_dict();
  for (auto& [name, w] : state)
    if (is_fp8_quantizable(name, w)) {
      Fp8Blocks b = quantize_fp8_blocks(w);
      w = dequantize_fp8_blocks(b.q, b.scale);
    }
  DeepseekModel m(c, ModelOptions::for_dtype("fp32"));
  m.load_state(state, "dequantised");
  return m;
}

// FP8 weights read as codes (kernels::linear_dot_fp8) compute exactly what the fp32 model with the
// dequantised weights computes (with fp32 activations; the fp8 dtype's bf16 activations are held to
// the bf16 model by LogprobGapToBf16IsSmall).
TEST(Fp8Weights, ModelEqualsFp32WithDequantisedWeights) {
  at::NoGradGuard no_grad;
  ModelConfig c = small_like_config({{"hidden_size", 160}, {"moe_intermediate_size", 136}});  // partial blocks
  DeepseekModel dense = random_model(c);
  ModelOptions fp32_compute;  // FP8 weights, fp32 activations
  fp32_compute.fp8 = true;
  DeepseekModel fp8(c, fp32_compute);
  fp8.load_state(dense.state_dict(), "dense");
  // Every linear weight is held as codes + scales, exactly quantize_fp8_blocks of the float weight.
  std::map<std::string, at::Tensor> state = fp8.state_dict(), src = dense.state_dict();
  int64_t quantised = 0;
  for (const auto& [name, w] : src) {
    if (!is_fp8_quantizable(name, w)) {
      EXPECT_TRUE(at::isFloatingType(state.at(name).scalar_type())) << name;
      continue;
    }
    Fp8Blocks b = quantize_fp8_blocks(w);
    EXPECT_TRUE(ckpt_test::same_tensor(state.at(name), b.q)) << name;
    EXPECT_TRUE(at::equal(state.at(name + kFp8ScaleSuffix), b.scale)) << name;
    ++quantised;
  }
  EXPECT_EQ(quantised, 3 * 5 + 3 + 2 * (16 + 1) * 3);  // attention (q_a, q_b, kv_a, kv_b, o), dense MLP, experts
  const at::Tensor ids = random_ids(2, 12, c.vocab_size, 81);
  const DeepseekModel ref = dequantised_fp32(c, dense);
  EXPECT_EQ(max_abs_diff(fp8.forward(ids), ref.forward(ids)), 0.0);

  EXPECT_THROW(init_weights(fp8, 1), InputError);
}

TEST(Fp8Weights, LogprobGapToBf16IsSmall) {
  at::NoGradGuard no_grad;
  ModelConfig c = small_like_config({{"initializer_range", 0.05}});
  DeepseekModel dense = random_model(c);
  DeepseekModel bf16(c, ModelOptions::for_dtype("bf16")), fp8(c, ModelOptions::for_dtype("fp8"));
  bf16.load_state(dense.state_dict(), "dense");
  fp8.load_state(dense.state_dict(), "dense");
  at::Tensor ids = random_ids(4, 48, c.vocab_size, 82);
  at::Tensor gap = (fp8.logprobs(ids).to(at::kDouble) - bf16.logprobs(ids).to(at::kDouble)).abs();
  const double mean = gap.mean().item<double>(), max = gap.max().item<double>();
  std::cout << "FP8 vs bf16 |log-prob gap| over 188 tokens: mean " << mean << ", max " << max << "\n";
  EXPECT_GT(mean, 0.0) << "FP8 weights change the model";
  EXPECT_LT(mean, 0.05);
  EXPECT_LT(max, 0.5);
}

TEST(Fp8Weights, Fp8CheckpointCodesAreKeptAsStored) {
  at::NoGradGuard no_grad;
  ModelConfig c = small_like_config();
  DeepseekModel dense = random_model(c);
  ckpt_test::TempDir tmp;
  SaveOptions opt;
  opt.dtype = DType::F8_E4M3;
  opt.unquantized_dtype = DType::F32;  // so that only the FP8 part differs from the float weights
  save_weights(tmp / "ckpt", dense.state_dict(), c.raw, opt);
  DeepseekModel m = load_pretrained(tmp / "ckpt", ModelOptions::for_dtype("fp8"));
  auto raw = load_checkpoint_raw(tmp / "ckpt");
  int64_t codes = 0;
  for (const auto& [name, t] : m.state_dict()) {
    const StoredTensor& st = raw.at(name);
    if (st.dtype == DType::F8_E4M3) {
      EXPECT_TRUE(ckpt_test::same_tensor(t, st.data)) << name;
      ++codes;
    } else if (name.find(kFp8ScaleSuffix) != std::string::npos) {
      EXPECT_TRUE(at::equal(t, st.data.to(at::kFloat))) << name;
    }
  }
  EXPECT_GT(codes, 100);
  // The same model as quantising the float weights on load.
  DeepseekModel q(c, ModelOptions::for_dtype("fp8"));
  q.load_state(dense.state_dict(), "dense");
  at::Tensor ids = random_ids(1, 10, c.vocab_size, 83);
  EXPECT_EQ(max_abs_diff(m.forward(ids), q.forward(ids)), 0.0);
}

TEST(Fp8Weights, BadFp8StateIsRejectedAndChangesNothing) {
  at::NoGradGuard no_grad;
  ModelConfig c = small_like_config();
  DeepseekModel dense = random_model(c);
  DeepseekModel fp8(c, ModelOptions::for_dtype("fp8"));
  fp8.load_state(dense.state_dict(), "dense");
  const std::string w = "model.layers.1.self_attn.o_proj.weight", s = w + kFp8ScaleSuffix;
  std::map<std::string, at::Tensor> codes = fp8.state_dict();
  auto expect_error = [&](std::map<std::string, at::Tensor> state, const std::string& what) {
    std::map<std::string, at::Tensor> before = fp8.state_dict();
    try {
      fp8.load_state(state, "update");
      ADD_FAILURE() << "expected InputError with " << what;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    for (const auto& [name, t] : fp8.state_dict()) EXPECT_TRUE(ckpt_test::same_tensor(t, before.at(name))) << name;
  };
  auto bad = codes;
  bad[s] = at::ones({2, 2});
  expect_error(bad, "update: " + s + ": expected shape");
  bad = codes;
  bad[w] = dense.state_dict().at(w);  // float weight with a scale beside it
  expect_error(bad, "update: " + w + ": has " + s + " beside it, so expected FP8 e4m3 codes");
  bad = dense.state_dict();
  bad["model.norm.weight"] = at::ones({c.hidden_size}, at::kLong);
  expect_error(bad, "update: model.norm.weight: expected a floating-point tensor, got Long");
  bad = dense.state_dict();
  bad[w] = bad[w].clone();
  bad[w][0][0] = std::numeric_limits<float>::infinity();
  expect_error(bad, "update: " + w + ": ");
}

// The FP8 model's own greedy generation over the contiguous latent cache (prefill, then absorbed
// decode: the engine's math on one sequence). In bf16 compute, near-ties are common and results
// move with the batch shape (GEMM blocking), so the engine runs one sequence at a time here and is
// held to this path bit for bit, rather than to full forwards.
void expect_cached_greedy(const DeepseekModel& m, const std::vector<int64_t>& prompt, const Completion& c) {
  at::NoGradGuard no_grad;
  LatentCache cache = m.make_cache(1, static_cast<int64_t>(prompt.size() + c.token_ids.size()));
  at::Tensor logits = m.forward(at::tensor(prompt, at::kLong).unsqueeze(0), {}, &cache)[0][-1];
  ASSERT_EQ(c.logprobs.size(), c.token_ids.size());
  for (size_t t = 0; t < c.token_ids.size(); ++t) {
    const int64_t want = logits.argmax().item<int64_t>();
    EXPECT_EQ(c.token_ids[t], want) << "token " << t;
    EXPECT_EQ(c.logprobs[t], logits.log_softmax(-1)[want].item<float>()) << "token " << t;
    if (t + 1 < c.token_ids.size()) logits = m.forward(at::full({1, 1}, want, at::kLong), {}, &cache)[0][-1];
  }
}

TEST(Fp8Weights, EngineOnFp8WeightsGeneratesWithTheFp8Model) {
  ModelConfig c = small_like_config();
  DeepseekModel dense = random_model(c);
  auto fp8 = std::make_shared<DeepseekModel>(c, ModelOptions::for_dtype("fp8"));
  fp8->load_state(dense.state_dict(), "dense");
  Engine engine(fp8, 0);
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 8;
  for (int64_t len : {6, 19}) {
    std::vector<int64_t> p = random_prompt(len, c.vocab_size, 84 + len);
    engine.submit({p, 1, g});
    std::vector<Completion> done = engine.run_until_idle();
    ASSERT_EQ(done.size(), 1u);
    expect_cached_greedy(*fp8, p, done[0]);
  }
  const std::vector<int64_t> p1 = random_prompt(6, c.vocab_size, 90);
  // New weights for an FP8 engine arrive as float tensors and are quantised on the swap.
  DeepseekModel other = random_model(c, {}, 9);
  engine.set_weights(1, other.state_dict());
  engine.submit({p1, 1, g});
  std::vector<Completion> next = engine.run_until_idle();
  ASSERT_EQ(next.size(), 1u);
  DeepseekModel other_fp8(c, ModelOptions::for_dtype("fp8"));
  other_fp8.load_state(other.state_dict(), "other");
  expect_cached_greedy(other_fp8, p1, next[0]);
  EXPECT_EQ(next[0].weight_version, 1);
}

}  // namespace
