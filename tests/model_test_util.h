// Helpers shared by the model tests: small configs, random models, fixture paths.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <string>

#include <nlohmann/json.hpp>

#include "kernels/cuda_info.h"
#include "model/batch_invariant.h"
#include "model/deepseek.h"
#include "model/dense_decoder.h"
#include "model/init.h"
#include "model/model_config.h"

namespace grpo::testing {

inline std::string fixture_dir() { return std::string(GRPO_TEST_DATA) + "/dsv3-tiny"; }

// A tiny V3 config (3 layers, layer 0 dense; 8 experts in 4 groups) with the keys of `patch`
// replaced (a null value is written as null). Weights are drawn with std 0.3 so that every part of
// the model moves the logits.
inline nlohmann::json tiny_config_json(const nlohmann::json& patch = nlohmann::json::object()) {
  nlohmann::json j = {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"vocab_size", 64},
      {"hidden_size", 32},
      {"intermediate_size", 48},
      {"moe_intermediate_size", 16},
      {"num_hidden_layers", 3},
      {"num_attention_heads", 4},
      {"q_lora_rank", 16},
      {"kv_lora_rank", 12},
      {"qk_nope_head_dim", 8},
      {"qk_rope_head_dim", 8},
      {"v_head_dim", 6},
      {"n_routed_experts", 8},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 3},
      {"first_k_dense_replace", 1},
      {"n_group", 4},
      {"topk_group", 2},
      {"topk_method", "noaux_tc"},
      {"scoring_func", "sigmoid"},
      {"norm_topk_prob", true},
      {"routed_scaling_factor", 2.5},
      {"rms_norm_eps", 1e-6},
      {"initializer_range", 0.3},
      {"max_position_embeddings", 256},
      {"rope_theta", 100.0},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
  };
  for (const auto& [key, value] : patch.items()) j[key] = value;
  return j;
}

inline ModelConfig tiny_config(const nlohmann::json& patch = nlohmann::json::object()) {
  return ModelConfig::from_json(tiny_config_json(patch), "test config");
}

// A model with init_weights(seed) and, for noaux_tc, a random non-zero correction bias
// (std 0.3, comparable to the sigmoid scores, so it changes which experts win).
// Structurally like bench/configs/dsv3-small.json (first layer dense, q_lora, 16 routed experts
// top-4 in one group, one shared expert, noaux_tc, the bpe-tokenizer's 3000-token vocabulary),
// scaled down to run many full forwards in a test.
inline ModelConfig small_like_config(const nlohmann::json& patch = nlohmann::json::object()) {
  nlohmann::json j = tiny_config_json({{"vocab_size", 3000},
                                       {"hidden_size", 64},
                                       {"intermediate_size", 128},
                                       {"moe_intermediate_size", 32},
                                       {"num_hidden_layers", 3},
                                       {"num_attention_heads", 8},
                                       {"q_lora_rank", 24},
                                       {"kv_lora_rank", 32},
                                       {"qk_nope_head_dim", 16},
                                       {"qk_rope_head_dim", 8},
                                       {"v_head_dim", 16},
                                       {"n_routed_experts", 16},
                                       {"num_experts_per_tok", 4},
                                       {"n_group", 1},
                                       {"topk_group", 1},
                                       {"initializer_range", 0.15},
                                       {"max_position_embeddings", 512}});
  for (const auto& [key, value] : patch.items()) j[key] = value;
  return ModelConfig::from_json(j, "small-like test config");
}

inline DeepseekModel random_model(const ModelConfig& c, ModelOptions opts = {}, uint64_t seed = 7) {
  DeepseekModel m(c, opts);
  init_weights(m, seed);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
  at::NoGradGuard no_grad;
  for (auto& [name, t] : m.named_parameters())
    if (name.find("e_score_correction_bias") != std::string::npos)
      t->copy_(at::empty(t->sizes(), at::kFloat).normal_(0.0, 0.3, gen));
  return m;
}

// A tiny dense decoder config.json ("llama" or "qwen2"): 2 layers, 4 query heads sharing 2
// key/value heads (GQA), head_dim 8 != hidden / heads; qwen2 ties its embeddings. Keys of `patch`
// replace the defaults.
inline nlohmann::json dense_config_json(const std::string& type,
                                        const nlohmann::json& patch = nlohmann::json::object()) {
  nlohmann::json j = {{"model_type", type},
                      {"vocab_size", 40},
                      {"hidden_size", 24},
                      {"intermediate_size", 36},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"head_dim", 8},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 50.0},
                      {"max_position_embeddings", 64},
                      {"initializer_range", 0.25},
                      {"tie_word_embeddings", type == "qwen2"},
                      {"bos_token_id", 0},
                      {"eos_token_id", 1},
                      {"rope_scaling", nullptr}};
  for (const auto& [k, v] : patch.items()) j[k] = v;
  return j;
}

// init_weights(seed), then norms and biases moved by uniform(-0.3, 0.3) so that every parameter
// changes the logits.
inline DenseDecoder random_dense(const nlohmann::json& config, ModelOptions opts = {}, uint64_t seed = 5) {
  DenseDecoder m(DenseConfig::from_json(config, "test config"), opts);
  init_weights(m, seed);
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
  for (auto& [name, t] : m.named_parameters())
    if (t->dim() == 1) t->add_(at::empty(t->sizes(), at::kFloat).uniform_(-0.3, 0.3, gen).to(t->scalar_type()));
  return m;
}

inline at::Tensor random_ids(int64_t b, int64_t t, int64_t vocab, uint64_t seed = 3) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(vocab, {b, t}, gen, at::TensorOptions().dtype(at::kLong));
}

inline std::vector<int64_t> row(const at::Tensor& ids, int64_t b) {
  at::Tensor r = ids[b].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

// Why no CUDA device is visible ("" when one is): GPU tests skip with it.
inline std::string no_gpu_reason() {
  std::string why;
  return kernels::cuda_devices(&why).empty() ? why : "";
}

// A model of m's config and weights built with `options` (on its device).
inline DeepseekModel copied_with(const DeepseekModel& m, const ModelOptions& options) {
  DeepseekModel out(m.config(), options);
  out.load_state(m.state_dict(), "copied weights");
  return out;
}
inline ModelOptions on_gpu(ModelOptions o = {}) {
  o.device = at::Device(at::kCUDA, 0);
  return o;
}

// Sends CPU tensors down the portable path (the ATen ops a GPU runs) while it lives.
struct PortableOps {
  PortableOps() { set_portable_ops(true); }
  ~PortableOps() { set_portable_ops(false); }
  PortableOps(const PortableOps&) = delete;
  PortableOps& operator=(const PortableOps&) = delete;
};

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace grpo::testing
