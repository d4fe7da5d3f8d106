// A dense Llama / Qwen2 style causal LM (the students of distillation, issue 7): token embedding,
// N × (RMSNorm → grouped-query attention with RoPE → residual → RMSNorm → SwiGLU MLP → residual),
// final RMSNorm, lm_head (optionally tied to the embedding). The numerics are HF's
// LlamaForCausalLM / Qwen2ForCausalLM (eager attention):
//
//   q = x Wqᵀ (+ bq)  [B, T, H, Dh]      k, v = x Wkᵀ (+ bk), x Wvᵀ (+ bv)  [B, T, Hkv, Dh]
//   q, k rotated by RoPE in the "rotate_half" layout (pairs (i, i + Dh/2), base rope_theta)
//   query head h reads key/value head h / (H / Hkv)  (GQA; HF repeat_kv)
//   attn = softmax(q kᵀ / sqrt(Dh) + causal mask) v  → o_proj (+ bo)
//
// Parameters are plain tensors named by the HF checkpoint keys (named_parameters), so checkpoints
// load and save as map look-ups (model/pretrained.h). Like DeepseekModel, parameters are stored in
// ModelOptions::param_dtype and cast to ModelOptions::compute_dtype where they are used.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/causal_lm.h"
#include "model/model_options.h"
#include "model/moe.h"  // MlpWeights, mlp_forward

namespace grpo {

// HF config.json of a dense decoder. Required: model_type ("llama" | "qwen2"), vocab_size,
// hidden_size, intermediate_size, num_hidden_layers, num_attention_heads. Optional with HF's
// defaults: num_key_value_heads (= num_attention_heads), head_dim (hidden / heads), rms_norm_eps,
// rope_theta (10000), max_position_embeddings, tie_word_embeddings, attention_bias (llama: bias on
// q, k, v and o), bos/eos_token_id, initializer_range. Qwen2 always has q/k/v biases.
// Unsupported features are InputErrors naming the key: rope_scaling other than null, a sliding
// window in use, mlp_bias, hidden_act other than silu, heads not divisible by kv heads.
struct DenseConfig {
  std::string model_type;  // "llama" | "qwen2"
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
  bool qkv_bias = false, o_bias = false;
  double rope_theta = 10000.0, rms_norm_eps = 1e-6, initializer_range = 0.02;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  nlohmann::json raw;  // the parsed file, written back unchanged when a checkpoint is saved

  static DenseConfig from_json(const nlohmann::json& j, const std::string& source);
  static DenseConfig load(const std::string& path);  // a config.json or its directory
};

// True when a config.json object's model_type names a dense decoder (llama, qwen2).
bool is_dense_config(const nlohmann::json& config);

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct DenseLayer {
  at::Tensor input_layernorm, post_attention_layernorm;  // [D]
  at::Tensor q_proj, k_proj, v_proj, o_proj;             // [H·Dh, D], [Hkv·Dh, D] ×2, [D, H·Dh]
  at::Tensor q_bias, k_bias, v_bias, o_bias;             // [out] each, undefined when the config has none
  MlpWeights mlp;                                        // [I, D], [I, D], [D, I]
};

// Thread-safety: const methods may run concurrently (one LatentContext each); the rest need one owner. Owns its
// tensors.
class DenseDecoder : public CausalLM {
 public:
  // Allocates every parameter (zeros); fill with load_state() or init_weights() (model/init.h).
  // options.fp8 / options.mtp / expert ranks are not supported (InputError).
  explicit DenseDecoder(DenseConfig config, ModelOptions options = {});

  const DenseConfig& config() const { return config_; }
  const ModelOptions& options() const override { return options_; }
  LmSpec spec() const override;
  const nlohmann::json& config_json() const override { return config_.raw; }
  std::unique_ptr<CausalLM> make_empty(const ModelOptions& options) const override;

  // Every parameter by HF name, in a stable order (no lm_head.weight with tied embeddings).
  std::vector<std::pair<std::string, at::Tensor*>> named_parameters() override;
  std::map<std::string, at::Tensor> state_dict() const override;
  std::vector<std::pair<std::string, at::Tensor>> named_trainable() override;  // all of them
  void set_requires_grad(bool on) override;

  // Copies `weights` in (cast to param_dtype), all or nothing. InputError naming `source` and the
  // tensor for a wrong shape or a non-floating tensor, listing missing and unexpected names.
  // Ignored: lm_head.weight with tied embeddings, rotary inv_freq buffers.
  void load_state(const std::map<std::string, at::Tensor>& weights, const std::string& source) override;

  // Final hidden states [B, T, D] in compute dtype; ids [B, T] int64. With feed.context the chunk's
  // rotated keys and values (one row [k | v] of 2·Hkv·Dh per token and layer) are stored in it and
  // the chunk attends to every key its row holds up to each query's slot; positions default to
  // those slots. feed.expert_load and feed.tokens are for MoE models and ignored here.
  at::Tensor hidden(const at::Tensor& ids, const Feed& feed = {}) const override;
  at::Tensor logits(const at::Tensor& ids, const Feed& feed = {}) const override;
  at::Tensor logits_at(const at::Tensor& h, const at::Tensor& rows) const override;

  const at::Tensor& lm_head() const { return config_.tie_word_embeddings ? embed_tokens_ : lm_head_; }

 private:
  // chunk.slots: [B, T] each query's slot (it sees keys s <= slot; packed sequences: the keys of
  // its own sequence up to itself, attended as padded rows); mask: [B, 1, 1, T, S] additive (packed:
  // [n, 1, 1, L, L]), built by the first layer and reused. With a context the chunk's keys and values are stored in it
  // at layer `index` and the S keys it returns are attended to; without one, the chunk's own (S = T).
  at::Tensor attention(const DenseLayer& l, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                       const LatentChunk& chunk, at::Tensor& mask, LatentContext* context, int64_t index) const;

  DenseConfig config_;
  ModelOptions options_;
  at::Tensor embed_tokens_, norm_, lm_head_;
  std::vector<DenseLayer> layers_;
};

}  // namespace grpo
