// The DeepSeek V2/V3 model hyper-parameters, read from a HuggingFace `config.json` the way
// transformers' DeepseekV2Config / DeepseekV3Config read it (docs/architecture.md §3).
//
// Contract:
//  * Keys that fix tensor shapes are required (vocab_size, hidden_size, intermediate_size,
//    num_hidden_layers, num_attention_heads, q_lora_rank (null allowed), kv_lora_rank,
//    qk_nope_head_dim, qk_rope_head_dim, v_head_dim, n_routed_experts (null = dense model) and,
//    for MoE models, moe_intermediate_size and num_experts_per_tok). Every other key takes the
//    HF default of the model family when absent. Unknown keys are ignored.
//  * Rotary settings come from `rope_scaling` + `rope_theta` (hub V2/V3 style) or from
//    `rope_parameters` (HF 5.x style); rope types "default" and "yarn" are supported.
//  * Any problem (unreadable or truncated JSON, a missing key, a wrong type, an unknown
//    architecture/model_type, an unsupported option, inconsistent sizes) throws grpo::InputError
//    naming the file and the key.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo {

enum class ModelFamily { kDeepseekV2, kDeepseekV3 };
enum class ScoringFunc { kSoftmax, kSigmoid };
// greedy: top-k of the scores; group_limited_greedy: top-k inside the `topk_group` groups with
// the largest max score (V2); noaux_tc: top-k of scores + e_score_correction_bias inside the
// `topk_group` groups with the largest sum of their top-2 biased scores (V3).
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

struct RopeConfig {
  std::string type = "default";  // "default" | "yarn"
  double theta = 10000.0;
  // YaRN only:
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;  // 0: max_position_embeddings
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 0.0, mscale_all_dim = 0.0;  // 0 means "not given" (as HF's truthiness test)
  std::optional<double> attention_factor;     // explicit cos/sin scale, else derived
  bool truncate = true;                       // floor/ceil the correction range
};

struct ModelConfig {
  ModelFamily family = ModelFamily::kDeepseekV3;
  std::string model_type;    // "deepseek_v2" | "deepseek_v3"
  std::string architecture;  // "DeepseekV2ForCausalLM" | "DeepseekV3ForCausalLM"

  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  std::optional<int64_t> q_lora_rank;  // nullopt: a plain q_proj
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;

  // Mixture of experts (n_routed_experts == 0: every layer is a dense MLP).
  int64_t n_routed_experts = 0, n_shared_experts = 0, moe_intermediate_size = 0;
  int64_t num_experts_per_tok = 0, first_k_dense_replace = 0, moe_layer_freq = 1;
  int64_t n_group = 1, topk_group = 1;
  TopkMethod topk_method = TopkMethod::kNoauxTc;
  ScoringFunc scoring_func = ScoringFunc::kSigmoid;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;

  RopeConfig rope;
  bool rope_interleave = true;  // rope dims stored as adjacent pairs (V2 always, V3 default)
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  int64_t num_nextn_predict_layers = 0;

  nlohmann::json raw;  // the parsed file, written back unchanged when a checkpoint is saved

  // Parses a config.json object; `source` names the file in error messages.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  // Reads `path` (a config.json or a directory holding one).
  static ModelConfig load(const std::string& path);

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int64_t layer) const;  // layer >= first_k_dense_replace && layer % freq == 0
  // qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2 for YaRN.
  double softmax_scale() const;
};

}  // namespace grpo
