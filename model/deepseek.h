// The DeepSeek V2/V3 causal LM (docs/architecture.md §3): embeddings, decoder layers (MLA + dense MLP or
// DeepSeekMoE), final RMSNorm, lm_head, and the optional multi-token-prediction (MTP) modules.
//
// Parameters are plain tensors named exactly by the HF checkpoint keys (`named_parameters`), so
// loading and saving are map look-ups. Parameters are stored in ModelOptions::param_dtype and
// cast to ModelOptions::compute_dtype where they are used: param fp32 + compute bf16 is "bf16
// training with fp32 master weights" (autograd flows back to the fp32 tensors).
//
// With ModelOptions::fp8 every linear projection (the tensors is_fp8_quantizable names: attention,
// MLP and expert matrices; not embeddings, lm_head, norms or the router) is held as e4m3 codes
// plus 128×128 block scales, named like an FP8 checkpoint (`X.weight` codes, `X.weight_scale_inv`),
// and multiplied through the weight-only CPU reference path of model/linear.h. Such a model is for
// inference: load it (load_state quantises float weights, or takes codes + scales as they are);
// it cannot be trained or randomly initialised.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/causal_lm.h"
#include "model/latent_cache.h"
#include "model/mla.h"
#include "model/model_config.h"
#include "model/model_options.h"
#include "model/moe.h"

namespace grpo {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct DecoderLayer {
  at::Tensor input_layernorm, post_attention_layernorm;  // [D]
  MlaWeights self_attn;
  bool is_moe = false;
  MlpWeights mlp;  // dense layers (intermediate_size)
  MoeWeights moe;  // MoE layers
};

// One MTP depth (DeepSeek-V3 §2.2), stored as model.layers.{num_hidden_layers + k}.*:
// h' = block(eh_proj([enorm(embed(t_{i+k})) ; hnorm(h_i)])), logits = head(shared_head.norm(h')).
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct MtpModule {
  at::Tensor enorm, hnorm;                        // [D]
  Linear eh_proj;                                 // [D, 2D]
  at::Tensor embed_tokens;                        // [V, D]
  at::Tensor shared_head_norm, shared_head_head;  // [D], [V, D]
  DecoderLayer block;
};

// Thread-safety: const methods may run concurrently (not with expert parallelism); owns its tensors, shares its runner.
class DeepseekModel : public CausalLM {
 public:
  // Allocates every parameter (zeros) with its shape; fill with load_state() or init_weights().
  explicit DeepseekModel(ModelConfig config, ModelOptions options = {});

  const ModelConfig& config() const { return config_; }
  const ModelOptions& options() const override { return options_; }
  LmSpec spec() const override;
  const nlohmann::json& config_json() const override { return config_.raw; }
  std::unique_ptr<CausalLM> make_empty(const ModelOptions& options) const override;

  // Every checkpoint tensor (parameters and the e_score_correction_bias buffers), by HF name,
  // in a stable order. With tied embeddings there is no lm_head.weight entry. An expert-sharded
  // model lists only its own routed experts (under their global numbers).
  std::vector<std::pair<std::string, at::Tensor*>> named_parameters() override;
  std::map<std::string, at::Tensor> state_dict() const override;
  // All of named_parameters() except e_score_correction_bias.
  std::vector<std::pair<std::string, at::Tensor>> named_trainable() override;
  void set_requires_grad(bool on) override;

  // Copies `weights` in (cast to param_dtype) — all or nothing: on any error the model is
  // unchanged. Throws InputError naming `source` and the tensor for a shape mismatch or a
  // non-floating tensor, and listing missing and unexpected names. Ignored: lm_head.weight when
  // embeddings are tied, rotary inv_freq buffers, MTP layers when the model has none, and the
  // routed experts of other shards in an expert-sharded model.
  // An FP8 model takes each linear weight either as float (quantised here) or as e4m3 codes
  // (float8_e4m3fn) with its `X.weight_scale_inv` beside it (kept as they are).
  void load_state(const std::map<std::string, at::Tensor>& weights, const std::string& source) override;

  // Final hidden states (after model.norm) [B, T, D] in compute dtype. ids: [B, T] int64;
  // positions (rope): [B, T] or [T] int64, default the chunk's slots in `context` (0..T-1 without
  // one). With a context the chunk continues its rows' keys and is committed to it.
  // With `expert_load`: one entry per decoder layer, the [E] token counts of its routed experts
  // (undefined for dense layers), for update_correction_biases.
  // `tokens` ([B, T] bool, undefined: all): the positions that reach the routed experts and count
  // in the load; the others (right padding in training batches) get the shared experts only, so
  // how a batch is padded changes neither the loads nor which experts get gradients.
  // Routes out and replay in: hidden() with Feed::routes / Feed::replay.
  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& positions = {}, LatentContext* context = nullptr,
                           AttentionForm form = AttentionForm::kAuto, std::vector<at::Tensor>* expert_load = nullptr,
                           const at::Tensor& tokens = {}) const;
  // hidden_states and forward with feed's fields (AttentionForm::kAuto).
  at::Tensor hidden(const at::Tensor& ids, const Feed& feed = {}) const override;
  at::Tensor logits(const at::Tensor& ids, const Feed& feed = {}) const override;
  // Logits [B, T, V], fp32 (fp64 in fp64 compute).
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& positions = {}, LatentContext* context = nullptr,
                     AttentionForm form = AttentionForm::kAuto, std::vector<at::Tensor>* expert_load = nullptr) const;
  // Logits [N, V] of the given rows of the final hidden states only (h: [B, T, D], rows: [N]
  // indices into the flattened B*T tokens): the head is applied where logits are needed.
  at::Tensor logits_at(const at::Tensor& h, const at::Tensor& rows) const override;
  // MTP depth k (1-based) logits [B, T-k, V]: entry i predicts ids[:, i + k + 1]. Needs options.mtp.
  std::vector<at::Tensor> mtp_logits(const at::Tensor& ids) const;
  // The same from the main model's hidden states h = hidden(ids) [B, T, D] (training: one forward
  // for both losses).
  std::vector<at::Tensor> mtp_logits(const at::Tensor& ids, const at::Tensor& h) const;
  // Depth 1 over a chunk, for drafting (causal_lm.h).
  bool has_mtp() const override { return !mtp_.empty(); }
  at::Tensor mtp_hidden(const at::Tensor& h, const at::Tensor& next_ids, const Feed& feed = {}) const override;
  at::Tensor mtp_logits_at(const at::Tensor& hm, const at::Tensor& rows) const override;

  // Aux-loss-free balancing step on every noaux_tc layer's e_score_correction_bias (outside
  // autograd): see balanced_bias. `expert_load` as filled by forward().
  void update_correction_biases(const std::vector<at::Tensor>& expert_load, double gamma) override;

  // The runner of the routed experts (required when options().expert_ranks > 1; null: local).
  void set_routed_experts(std::shared_ptr<const RoutedExperts> runner) { routed_experts_ = std::move(runner); }

  // Latent rows split as c_kv | k_rope (LatentCache::c_kv, k_rope).
  LatentCache make_cache(int64_t batch, int64_t capacity) const override;
  const std::vector<DecoderLayer>& layers() const { return layers_; }
  const at::Tensor& lm_head() const { return config_.tie_word_embeddings ? embed_tokens_ : lm_head_; }

 private:
  // What one MoE layer's forward takes and gives besides x (see Feed); all optional.
  struct MoeFeed {
    at::Tensor tokens;             // [B·T] bool
    at::Tensor replay;             // [B·T, k] int64
    at::Tensor* load = nullptr;    // out: [E] int64
    at::Tensor* routes = nullptr;  // out: [B·T, k] int64
    at::Tensor* chosen = nullptr;  // out: [B·T, k] int64, the router's own choice
  };
  at::Tensor run_layers(const at::Tensor& ids, const Feed& feed, AttentionForm form) const;
  at::Tensor decoder_layer(const DecoderLayer& l, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                           const LatentChunk& chunk, LatentContext* context, int64_t index, AttentionForm form,
                           const MoeFeed& moe) const;
  at::Tensor embed(const at::Tensor& table, const at::Tensor& ids) const;
  at::Tensor head(const at::Tensor& weight, const at::Tensor& h) const;

  ModelConfig config_;
  ModelOptions options_;
  GateSpec gate_;
  at::Tensor embed_tokens_, norm_, lm_head_;
  at::Tensor inv_freq_;  // [rope/2] fp64 on the model's device: rope_inv_freq of the config, computed once
  std::vector<DecoderLayer> layers_;
  std::vector<MtpModule> mtp_;
  std::shared_ptr<const RoutedExperts> routed_experts_;
};

}  // namespace grpo
