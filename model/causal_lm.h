// One causal-LM interface over the model families (docs/architecture.md §3): the DeepSeek V2/V3
// MoE model (model/deepseek.h) and the dense Llama / Qwen2 decoders (model/dense_decoder.h). The
// rollout engine, the trainer, eval, generate, logprobs and distillation take a CausalLM, so a
// checkpoint of either family runs everywhere; the family is chosen in one place,
// make_causal_lm / load_causal_lm (by the config's model_type).
//
// What the families share: parameters named by their HF checkpoint keys, a forward that continues
// a LatentContext (per layer, one row of W values per cached token: MLA's c_kv | k_rope, a dense
// model's rotated keys | values), logits of chosen rows, log-probs, weights in and out.
#pragma once
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard, for every user of a model

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/latent_cache.h"
#include "model/latent_context.h"
#include "model/model_options.h"

namespace grpo {

// What the code around a model needs of its config. A plain value.
struct LmSpec {
  std::string model_type;  // config.json's model_type
  int64_t vocab_size = 0, hidden_size = 0, num_hidden_layers = 0, max_position_embeddings = 0;
  std::vector<int64_t> eos_token_ids;
  double initializer_range = 0.02;  // the std of random initial weights (model/init.h)
  // Values per token per layer in a LatentContext (MLA: kv_lora_rank + qk_rope_head_dim; dense:
  // 2 · num_key_value_heads · head_dim).
  int64_t cache_width = 0;
  // Values per token per layer a standard multi-head cache would hold (every head's K and V), to
  // report what the cache saves.
  int64_t mha_cache_width = 0;
  // MoE models: the MoE layers, experts per token and routed experts (the shape of Routes); 0 for a dense model.
  int64_t moe_layers = 0, num_experts_per_tok = 0, n_routed_experts = 0;
};

// The inputs of one forward besides the token ids. A plain value; the pointers are borrowed.
struct Feed {
  // [B, T] or [T] int64 rope positions; undefined: the chunk's slots in `context` (0..T-1 without one).
  at::Tensor positions;
  // The cache the chunk continues; the chunk is committed to it. Null: the ids are whole sequences.
  LatentContext* context = nullptr;
  // Packed sequences (no context, one row): the row holds sequences of these lengths back to back
  // (summing to T). Attention stays inside each sequence (block-diagonal causal) and positions
  // restart at 0 for each, so every token is computed as in a row of its own, without padding.
  // Empty: each row is one sequence. Wrong use (a context, several rows, lengths that do not add up
  // to T or below 1): InputError.
  std::vector<int64_t> packed;
  // MoE only: one entry per decoder layer, the [E] token counts of its routed experts (undefined
  // for dense layers), for update_correction_biases. A dense model leaves it empty.
  std::vector<at::Tensor>* expert_load = nullptr;
  // MoE only: [B, T] bool, the positions that reach the routed experts (undefined: all).
  at::Tensor tokens;
  // MoE only, out: one entry per decoder layer, the experts each position went through, [B·T, k]
  // int64 (positions flattened row-major, ids ascending per row; -1 rows for positions outside
  // `tokens`), undefined for dense layers. A dense model leaves it empty.
  std::vector<at::Tensor>* routes = nullptr;
  // MoE only, out: like `routes`, the experts each position's router chose itself, before any
  // replay (equal to `routes` without replay): what the expert-disagreement metric compares.
  std::vector<at::Tensor>* router_choice = nullptr;
  // MoE only, in: routing replay (R3). [B, T, L_moe, k] int64, the experts forced on each position
  // per MoE layer (model order); a position whose ids are -1 keeps its router's choice. The gate
  // weights are recomputed from the router over the forced experts (replay_gate). Undefined: no
  // replay; a dense model ignores it. Shape or ids out of range: InputError.
  at::Tensor replay;
};

// Thread-safety: const methods may run concurrently (one LatentContext each; not with expert
// parallelism); the rest need one owner. Owns its tensors.
class CausalLM {
 public:
  virtual ~CausalLM() = default;

  virtual LmSpec spec() const = 0;
  // The parsed config.json, written back unchanged when a checkpoint is saved.
  virtual const nlohmann::json& config_json() const = 0;
  virtual const ModelOptions& options() const = 0;

  // Every checkpoint tensor by HF name, in a stable order.
  virtual std::vector<std::pair<std::string, at::Tensor*>> named_parameters() = 0;
  virtual std::map<std::string, at::Tensor> state_dict() const = 0;
  // The tensors gradients train, by name: named_parameters() less the buffers updated by other
  // rules (the MoE gates' e_score_correction_bias).
  virtual std::vector<std::pair<std::string, at::Tensor>> named_trainable() = 0;
  virtual void set_requires_grad(bool on) = 0;
  // Copies `weights` in, all or nothing; InputError naming `source` and the tensor.
  virtual void load_state(const std::map<std::string, at::Tensor>& weights, const std::string& source) = 0;
  // The same architecture with `options` and zero weights, to load_state() into.
  virtual std::unique_ptr<CausalLM> make_empty(const ModelOptions& options) const = 0;

  // Final hidden states [B, T, D] in compute dtype; ids [B, T] int64.
  virtual at::Tensor hidden(const at::Tensor& ids, const Feed& feed = {}) const = 0;
  // Logits [N, V] of the given rows of h ([B, T, D]; rows [N] index the flattened B·T tokens),
  // fp32 (fp64 in fp64 compute).
  virtual at::Tensor logits_at(const at::Tensor& h, const at::Tensor& rows) const = 0;
  // Logits [B, T, V], fp32 (fp64 in fp64 compute).
  virtual at::Tensor logits(const at::Tensor& ids, const Feed& feed = {}) const = 0;
  // log p(ids[:, t+1] | ids[:, :t+1]) for t < T-1: [B, T-1], fp32 (fp64 in fp64 compute).
  at::Tensor logprobs(const at::Tensor& ids) const;

  // Drafting with the first multi-token-prediction module (DeepSeek-V3 §2.2), for speculative
  // decoding. Whether the model holds one (built with ModelOptions::mtp).
  virtual bool has_mtp() const { return false; }
  // The MTP module over a chunk: h [B, T, D] = hidden() of positions s..s+T-1, next_ids [B, T] int64 =
  // the token after each of them; returns its hidden states [B, T, D] (entry i predicts the token two
  // after position s + i). With feed.context, the module's own keys are layer num_hidden_layers of
  // it (a context of num_hidden_layers + 1 layers) and the chunk is committed there. InputError
  // without an MTP module or for shapes that do not match.
  virtual at::Tensor mtp_hidden(const at::Tensor& h, const at::Tensor& next_ids, const Feed& feed = {}) const;
  // Logits [N, V] of the given rows of mtp_hidden's output (rows index the flattened B·T), fp32.
  virtual at::Tensor mtp_logits_at(const at::Tensor& hm, const at::Tensor& rows) const;

  // Aux-loss-free balancing of the routed experts (DeepSeek-V3 §2.1.2) from the loads a forward
  // counted; nothing to do for a model without them.
  virtual void update_correction_biases(const std::vector<at::Tensor>& expert_load, double gamma) {
    (void)expert_load;
    (void)gamma;
  }

  // A contiguous cache for `batch` rows of up to `capacity` tokens, in compute dtype.
  virtual LatentCache make_cache(int64_t batch, int64_t capacity) const;
};

// The model config.json (an object; `source` names it in errors) describes, with zero weights:
// a dense decoder for model_type llama / qwen2, the DeepSeek model otherwise.
std::unique_ptr<CausalLM> make_causal_lm(const nlohmann::json& config, const std::string& source,
                                         const ModelOptions& options = {});

}  // namespace grpo
