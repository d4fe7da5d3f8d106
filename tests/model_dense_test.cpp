// The dense Llama / Qwen2 decoder (model/dense_decoder.h): its fp32 forward against a float64
// reference written out per token and per head below, the cache (model/causal_lm.h) against full
// forwards, checkpoints (HF names, bit-exact round trip, errors), and autograd against finite
// differences.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "model/checkpoint.h"
#include "model/dense_decoder.h"
#include "model/init.h"
#include "model/pretrained.h"
#include "model_ckpt_testutil.h"
#include "model_test_util.h"

namespace grpo {
namespace {

using ckpt_test::expect_input_error;
using ckpt_test::TempDir;
using nlohmann::json;
using testing::dense_config_json;
using testing::random_dense;
using testing::random_ids;

// ---- float64 reference: one token and one head at a time --------------------------------------

at::Tensor ref_rms(const at::Tensor& x, const at::Tensor& w, double eps) {  // [D]
  return w * x / std::sqrt(x.pow(2).mean().item<double>() + eps);
}

// HF rotate_half RoPE of one head vector [Dh] at position p.
at::Tensor ref_rope(const at::Tensor& x, int64_t p, double theta) {
  const int64_t dh = x.size(0), half = dh / 2;
  at::Tensor out = x.clone();
  for (int64_t i = 0; i < half; ++i) {
    const double angle = p * std::pow(theta, -2.0 * i / dh);
    const double a = x[i].item<double>(), b = x[i + half].item<double>();
    out[i] = a * std::cos(angle) - b * std::sin(angle);
    out[i + half] = b * std::cos(angle) + a * std::sin(angle);
  }
  return out;
}

at::Tensor ref_linear(const std::map<std::string, at::Tensor>& w, const std::string& name, const at::Tensor& x) {
  at::Tensor y = at::mv(w.at(name + ".weight"), x);
  auto b = w.find(name + ".bias");
  return b == w.end() ? y : y + b->second;
}

// Logits [T, V] of one sequence.
at::Tensor reference_logits(const std::map<std::string, at::Tensor>& w64, const DenseConfig& c,
                            const std::vector<int64_t>& ids) {
  const int64_t t_len = ids.size(), h = c.num_attention_heads, dh = c.head_dim, rep = h / c.num_key_value_heads;
  std::vector<at::Tensor> x;
  x.reserve(ids.size());
  for (int64_t id : ids) x.push_back(w64.at("model.embed_tokens.weight")[id].clone());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    std::vector<at::Tensor> q(t_len), k(t_len), v(t_len);
    for (int64_t t = 0; t < t_len; ++t) {
      at::Tensor n = ref_rms(x[t], w64.at(p + "input_layernorm.weight"), c.rms_norm_eps);
      q[t] = ref_linear(w64, p + "self_attn.q_proj", n);
      k[t] = ref_linear(w64, p + "self_attn.k_proj", n);
      v[t] = ref_linear(w64, p + "self_attn.v_proj", n);
    }
    std::vector<at::Tensor> out(t_len);
    for (int64_t t = 0; t < t_len; ++t) {
      std::vector<at::Tensor> heads;
      for (int64_t head = 0; head < h; ++head) {
        const int64_t g = head / rep;
        at::Tensor qh = ref_rope(q[t].narrow(0, head * dh, dh), t, c.rope_theta);
        std::vector<double> scores;
        for (int64_t j = 0; j <= t; ++j) {
          at::Tensor kh = ref_rope(k[j].narrow(0, g * dh, dh), j, c.rope_theta);
          scores.push_back(at::dot(qh, kh).item<double>() / std::sqrt(static_cast<double>(dh)));
        }
        const double top = *std::max_element(scores.begin(), scores.end());
        double z = 0;
        for (double& s : scores) z += (s = std::exp(s - top));
        at::Tensor o = at::zeros({dh}, at::kDouble);
        for (int64_t j = 0; j <= t; ++j) o += scores[j] / z * v[j].narrow(0, g * dh, dh);
        heads.push_back(o);
      }
      out[t] = ref_linear(w64, p + "self_attn.o_proj", at::cat(heads));
    }
    for (int64_t t = 0; t < t_len; ++t) {
      x[t] = x[t] + out[t];
      at::Tensor n = ref_rms(x[t], w64.at(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
      at::Tensor gate = at::mv(w64.at(p + "mlp.gate_proj.weight"), n);
      at::Tensor up = at::mv(w64.at(p + "mlp.up_proj.weight"), n);
      x[t] = x[t] + at::mv(w64.at(p + "mlp.down_proj.weight"), gate / (1 + at::exp(-gate)) * up);
    }
  }
  const at::Tensor& head = c.tie_word_embeddings ? w64.at("model.embed_tokens.weight") : w64.at("lm_head.weight");
  std::vector<at::Tensor> logits;
  for (int64_t t = 0; t < t_len; ++t)
    logits.push_back(at::mv(head, ref_rms(x[t], w64.at("model.norm.weight"), c.rms_norm_eps)));
  return at::stack(logits);
}

std::map<std::string, at::Tensor> as_double(const std::map<std::string, at::Tensor>& w) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [n, t] : w) out[n] = t.to(at::kDouble);
  return out;
}

double max_rel_diff(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want).abs().max().item<double>() / want.abs().max().item<double>();
}

class DenseTypes : public ::testing::TestWithParam<std::string> {};

TEST_P(DenseTypes, Fp32ForwardMatchesFloat64Reference) {
  const DenseDecoder m = random_dense(dense_config_json(GetParam()));
  EXPECT_EQ(m.config().qkv_bias, GetParam() == "qwen2");
  const at::Tensor ids = random_ids(2, 9, 40, 11);
  const at::Tensor logits = m.logits(ids);  // [2, 9, 40]
  ASSERT_EQ(logits.sizes(), at::IntArrayRef({2, 9, 40}));
  const auto w64 = as_double(m.state_dict());
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<int64_t> row(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + 9);
    const at::Tensor want = reference_logits(w64, m.config(), row);
    EXPECT_LT(max_rel_diff(logits[b], want), 1e-5) << "row " << b;
  }
  // log-probs are the log-softmax of those logits at the next tokens.
  const at::Tensor lp = m.logprobs(ids);  // [2, 8]
  const at::Tensor want_lp =
      logits.narrow(1, 0, 8).log_softmax(-1).gather(-1, ids.narrow(1, 1, 8).unsqueeze(-1)).squeeze(-1);
  EXPECT_LT((lp - want_lp).abs().max().item<double>(), 1e-5);
}

TEST_P(DenseTypes, CacheMatchesFullForward) {
  const DenseDecoder m = random_dense(dense_config_json(GetParam()));
  const at::Tensor ids = random_ids(2, 10, 40, 12);
  const at::Tensor full = m.logits(ids);  // [2, 10, V]
  // Feeding the batch through a cache in chunks of 4, 1, 1, ... gives the same logits; each row
  // of the cache is a token's rotated keys | values.
  LatentCache cache = m.make_cache(2, 12);
  EXPECT_EQ(cache.values_per_token(), 2 * m.config().num_key_value_heads * m.config().head_dim);
  Feed feed;
  feed.context = &cache;
  std::vector<at::Tensor> chunks{m.logits(ids.narrow(1, 0, 4), feed)};
  for (int64_t t = 4; t < 10; ++t) chunks.push_back(m.logits(ids.narrow(1, t, 1), feed));
  EXPECT_EQ(cache.length(), 10);
  EXPECT_LT(max_rel_diff(at::cat(chunks, 1), full.to(at::kDouble)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Dense, DenseTypes, ::testing::Values("llama", "qwen2"));

TEST(DenseCheckpoint, SaveLoadIsBitExactWithHfNames) {
  TempDir dir;
  for (const std::string type : {"llama", "qwen2"}) {
    const DenseDecoder m = random_dense(dense_config_json(type, {{"num_hidden_layers", 1}}));
    const std::string out = dir / type;
    save_pretrained(m, out);
    std::set<std::string> names;
    for (const auto& [n, t] : load_checkpoint_raw(out)) names.insert(n);
    std::set<std::string> want{"model.embed_tokens.weight",
                               "model.layers.0.input_layernorm.weight",
                               "model.layers.0.self_attn.q_proj.weight",
                               "model.layers.0.self_attn.k_proj.weight",
                               "model.layers.0.self_attn.v_proj.weight",
                               "model.layers.0.self_attn.o_proj.weight",
                               "model.layers.0.post_attention_layernorm.weight",
                               "model.layers.0.mlp.gate_proj.weight",
                               "model.layers.0.mlp.up_proj.weight",
                               "model.layers.0.mlp.down_proj.weight",
                               "model.norm.weight"};
    if (type == "qwen2") {  // q/k/v biases; tied embeddings: no lm_head
      for (const char* p : {"q", "k", "v"}) want.insert(std::string("model.layers.0.self_attn.") + p + "_proj.bias");
    } else {
      want.insert("lm_head.weight");
    }
    EXPECT_EQ(names, want) << type;
    const std::unique_ptr<CausalLM> loaded = load_causal_lm(out);  // the family from model_type
    ASSERT_NE(dynamic_cast<DenseDecoder*>(loaded.get()), nullptr);
    const DenseDecoder back = load_dense_pretrained(out);
    const auto a = m.state_dict(), b = back.state_dict();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [n, t] : a) EXPECT_TRUE(at::equal(t, b.at(n))) << n;
    EXPECT_EQ(back.config().raw, m.config().raw);
  }
}

TEST(DenseCheckpoint, BadConfigsNameTheKey) {
  auto parse = [](const json& patch) {
    return [patch] { DenseConfig::from_json(dense_config_json("llama", patch), "cfg.json"); };
  };
  expect_input_error(parse({{"model_type", "mistral"}}), {"cfg.json", "model_type", "mistral"});
  expect_input_error(parse({{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}}), {"cfg.json", "rope_scaling"});
  expect_input_error(parse({{"use_sliding_window", true}}), {"use_sliding_window"});
  expect_input_error(parse({{"num_key_value_heads", 3}}), {"num_key_value_heads", "divide"});
  expect_input_error(parse({{"hidden_size", nullptr}}), {"hidden_size"});
  expect_input_error(parse({{"hidden_act", "gelu"}}), {"hidden_act"});
  expect_input_error(parse({{"mlp_bias", true}}), {"mlp_bias"});
  json no_size = dense_config_json("qwen2");
  no_size.erase("vocab_size");
  expect_input_error([&] { DenseConfig::from_json(no_size, "cfg.json"); }, {"cfg.json", "vocab_size", "missing"});
  // Llama attention_bias: biases on q, k, v and o; Qwen2: on q, k, v only.
  const DenseConfig llama_bias = DenseConfig::from_json(dense_config_json("llama", {{"attention_bias", true}}), "c");
  EXPECT_TRUE(llama_bias.qkv_bias && llama_bias.o_bias);
  const DenseConfig qwen = DenseConfig::from_json(dense_config_json("qwen2"), "c");
  EXPECT_TRUE(qwen.qkv_bias && !qwen.o_bias);
}

TEST(DenseCheckpoint, MissingOrMisshapedTensorsNameThem) {
  TempDir dir;
  const DenseDecoder m = random_dense(dense_config_json("llama"));
  auto weights = m.state_dict();
  weights.erase("model.layers.1.mlp.up_proj.weight");
  save_weights(dir / "missing", weights, m.config().raw);
  expect_input_error([&] { load_dense_pretrained(dir / "missing"); },
                     {"missing tensors", "model.layers.1.mlp.up_proj.weight"});
  weights = m.state_dict();
  weights["model.layers.0.self_attn.k_proj.weight"] = at::zeros({8, 24});
  save_weights(dir / "shape", weights, m.config().raw);
  expect_input_error([&] { load_dense_pretrained(dir / "shape"); },
                     {"model.layers.0.self_attn.k_proj.weight", "expected shape [16, 24]", "got [8, 24]"});
  weights = m.state_dict();
  weights["model.layers.0.extra.weight"] = at::zeros({2});
  save_weights(dir / "extra", weights, m.config().raw);
  expect_input_error([&] { load_dense_pretrained(dir / "extra"); },
                     {"unexpected tensors", "model.layers.0.extra.weight"});
  // A DeepSeek config is not a dense one.
  EXPECT_FALSE(is_dense_config(json{{"model_type", "deepseek_v3"}}));
}

// d/dθ of a weighted sum of log-probs, autograd vs central differences, in float64.
TEST(DenseGrad, MatchesFiniteDifferences) {
  ModelOptions f64;
  f64.compute_dtype = f64.param_dtype = at::kDouble;
  DenseDecoder m = random_dense(dense_config_json("qwen2", {{"num_hidden_layers", 1}}), f64, 9);
  const at::Tensor ids = random_ids(2, 6, 40, 21);
  const at::Tensor weights = at::randn({2, 5}, at::make_generator<at::CPUGeneratorImpl>(22), at::kDouble);
  auto loss = [&] { return (m.logprobs(ids) * weights).sum(); };
  m.set_requires_grad(true);
  loss().backward();
  int checked = 0;
  for (auto& [name, t] : m.named_parameters()) {
    at::Tensor flat = t->detach().view({-1});
    const at::Tensor grad = t->grad().view({-1});
    for (int64_t i : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
      const double old = flat[i].item<double>(), eps = 1e-6;
      double up, down;
      {
        at::NoGradGuard g;
        flat[i] = old + eps;
        up = loss().item<double>();
        flat[i] = old - eps;
        down = loss().item<double>();
        flat[i] = old;
      }
      const double numeric = (up - down) / (2 * eps), analytic = grad[i].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * 14);  // 14 tensors in a one-layer tied qwen2
}

}  // namespace
}  // namespace grpo
