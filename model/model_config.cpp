#include "model/model_config.h"

#include <cmath>

#include "common/error.h"
#include "model/json_keys.h"

namespace grpo {
namespace {

using nlohmann::json;

RopeConfig parse_rope(const JsonKeys& top, const ModelConfig& c) {
  RopeConfig r;
  r.theta = top.number("rope_theta", 10000.0);
  // HF 5.x: rope_parameters {rope_type, rope_theta, ...}; hub V2/V3: rope_scaling {type, ...}.
  const char* key = top.has_value("rope_parameters") ? "rope_parameters"
                    : top.has_value("rope_scaling")  ? "rope_scaling"
                                                     : nullptr;
  if (!key) return r;
  JsonKeys p = top.sub(key);
  r.theta = p.number("rope_theta", r.theta);
  r.type = p.string("rope_type", p.string("type", "default"));
  if (r.type == "default") return r;
  if (r.type != "yarn") p.fail("rope_type", "unsupported rope type '" + r.type + "' (expected default or yarn)");
  r.factor = p.number("factor", 0.0);
  r.original_max_position_embeddings = p.integer("original_max_position_embeddings", c.max_position_embeddings);
  if (!p.has_value("factor")) {
    if (!p.has_value("original_max_position_embeddings"))
      p.fail("factor", "missing (required for yarn without original_max_position_embeddings)");
    r.factor = static_cast<double>(c.max_position_embeddings) / static_cast<double>(r.original_max_position_embeddings);
  }
  if (!(r.factor > 0)) p.fail("factor", "must be > 0");
  if (r.original_max_position_embeddings <= 0) p.fail("original_max_position_embeddings", "must be > 0");
  // HF treats 0/None beta as "use the default" (`or 32`).
  r.beta_fast = p.number("beta_fast", 0.0);
  if (r.beta_fast == 0.0) r.beta_fast = 32.0;
  r.beta_slow = p.number("beta_slow", 0.0);
  if (r.beta_slow == 0.0) r.beta_slow = 1.0;
  r.mscale = p.number("mscale", 0.0);
  r.mscale_all_dim = p.number("mscale_all_dim", 0.0);
  r.attention_factor = p.optional_number("attention_factor");
  r.truncate = p.boolean("truncate", true);
  return r;
}

TopkMethod parse_topk_method(const JsonKeys& k, TopkMethod fallback) {
  if (!k.has_value("topk_method")) return fallback;
  std::string s = k.string("topk_method", "");
  if (s == "greedy") return TopkMethod::kGreedy;
  if (s == "group_limited_greedy") return TopkMethod::kGroupLimitedGreedy;
  if (s == "noaux_tc") return TopkMethod::kNoauxTc;
  k.fail("topk_method", "unknown value '" + s + "' (expected greedy, group_limited_greedy or noaux_tc)");
}

ScoringFunc parse_scoring(const JsonKeys& k, ScoringFunc fallback) {
  if (!k.has_value("scoring_func")) return fallback;
  std::string s = k.string("scoring_func", "");
  if (s == "softmax") return ScoringFunc::kSoftmax;
  if (s == "sigmoid") return ScoringFunc::kSigmoid;
  k.fail("scoring_func", "unknown value '" + s + "' (expected softmax or sigmoid)");
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source + ": expected a JSON object");
  JsonKeys k(j, source);
  ModelConfig c;
  c.raw = j;

  // Family: from model_type and/or architectures; both must name a DeepSeek V2/V3 model.
  c.model_type = k.string("model_type", "");
  if (k.has_value("architectures")) {
    const json& a = k.at("architectures");
    if (!a.is_array() || a.empty() || !a[0].is_string())
      k.fail("architectures", "expected a non-empty list of strings");
    c.architecture = a[0].get<std::string>();
    if (c.architecture != "DeepseekV2ForCausalLM" && c.architecture != "DeepseekV3ForCausalLM")
      k.fail("architectures",
             "unknown architecture '" + c.architecture + "' (expected DeepseekV2ForCausalLM or DeepseekV3ForCausalLM)");
  }
  if (c.model_type.empty() && c.architecture.empty())
    k.fail("model_type", "missing (need model_type or architectures)");
  if (!c.model_type.empty() && c.model_type != "deepseek_v2" && c.model_type != "deepseek_v3")
    k.fail("model_type", "unknown model_type '" + c.model_type + "' (expected deepseek_v2 or deepseek_v3)");
  bool v2 = c.model_type.empty() ? c.architecture == "DeepseekV2ForCausalLM" : c.model_type == "deepseek_v2";
  if (!c.architecture.empty() && (c.architecture == "DeepseekV2ForCausalLM") != v2)
    k.fail("architectures", "'" + c.architecture + "' does not match model_type '" + c.model_type + "'");
  c.family = v2 ? ModelFamily::kDeepseekV2 : ModelFamily::kDeepseekV3;
  if (c.model_type.empty()) c.model_type = v2 ? "deepseek_v2" : "deepseek_v3";
  if (c.architecture.empty()) c.architecture = v2 ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM";

  // Shapes (required).
  c.vocab_size = k.integer("vocab_size");
  c.hidden_size = k.integer("hidden_size");
  c.intermediate_size = k.integer("intermediate_size");
  c.num_hidden_layers = k.integer("num_hidden_layers");
  c.num_attention_heads = k.integer("num_attention_heads");
  c.q_lora_rank = k.nullable_integer("q_lora_rank");
  c.kv_lora_rank = k.integer("kv_lora_rank");
  c.qk_nope_head_dim = k.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = k.integer("qk_rope_head_dim");
  c.v_head_dim = k.integer("v_head_dim");
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"})
    k.require_positive(key, k.integer(key));
  k.require_memory("vocab_size", 4.0 * static_cast<double>(c.vocab_size) * static_cast<double>(c.hidden_size),
                   "the embedding table (vocab_size x hidden_size fp32 values)");
  if (c.q_lora_rank) k.require_positive("q_lora_rank", *c.q_lora_rank);
  if (c.qk_rope_head_dim % 2) k.fail("qk_rope_head_dim", "must be even");
  if (k.has_value("num_key_value_heads") && k.integer("num_key_value_heads") != c.num_attention_heads)
    k.fail("num_key_value_heads", "MLA needs num_key_value_heads == num_attention_heads");
  if (k.string("hidden_act", "silu") != "silu")
    k.fail("hidden_act", "unsupported activation '" + k.string("hidden_act", "") + "' (expected silu)");
  if (k.boolean("attention_bias", false)) k.fail("attention_bias", "biases are not supported (expected false)");
  if (k.boolean("mlp_bias", false)) k.fail("mlp_bias", "biases are not supported (expected false)");

  // Mixture of experts.
  std::optional<int64_t> routed = k.nullable_integer("n_routed_experts");
  c.n_routed_experts = routed.value_or(0);
  c.first_k_dense_replace = k.integer("first_k_dense_replace", v2 ? 0 : 3);
  c.moe_layer_freq = k.integer("moe_layer_freq", 1);
  c.n_shared_experts = k.integer("n_shared_experts", v2 ? 2 : 1);
  c.topk_method = parse_topk_method(k, v2 ? TopkMethod::kGreedy : TopkMethod::kNoauxTc);
  c.scoring_func = parse_scoring(k, v2 ? ScoringFunc::kSoftmax : ScoringFunc::kSigmoid);
  c.norm_topk_prob = k.boolean("norm_topk_prob", !v2);
  c.routed_scaling_factor = k.number("routed_scaling_factor", v2 ? 1.0 : 2.5);
  c.n_group = k.integer("n_group", v2 ? 1 : 8);
  c.topk_group = k.integer("topk_group", v2 ? 1 : 4);
  if (c.n_routed_experts > 0) {
    c.moe_intermediate_size = k.integer("moe_intermediate_size");
    c.num_experts_per_tok = k.integer("num_experts_per_tok");
    k.require_positive("moe_intermediate_size", c.moe_intermediate_size);
    k.require_positive("num_experts_per_tok", c.num_experts_per_tok);
    k.require_positive("moe_layer_freq", c.moe_layer_freq);
    k.require_positive("n_group", c.n_group);
    if (c.n_shared_experts < 0) k.fail("n_shared_experts", "must be >= 0");
    if (c.num_experts_per_tok > c.n_routed_experts)
      k.fail("num_experts_per_tok", "larger than n_routed_experts (" + std::to_string(c.n_routed_experts) + ")");
    if (c.n_routed_experts % c.n_group)
      k.fail("n_group", "must divide n_routed_experts (" + std::to_string(c.n_routed_experts) + ")");
    if (c.topk_group < 1 || c.topk_group > c.n_group)
      k.fail("topk_group", "must be in [1, n_group=" + std::to_string(c.n_group) + "]");
    if (c.topk_method == TopkMethod::kNoauxTc && c.n_routed_experts / c.n_group < 2)
      k.fail("n_group", "noaux_tc ranks groups by their top-2 scores: needs >= 2 experts per group");
    if (c.topk_method != TopkMethod::kGreedy && c.num_experts_per_tok > c.topk_group * (c.n_routed_experts / c.n_group))
      k.fail("topk_group", "the kept groups hold fewer experts than num_experts_per_tok");
  }

  c.max_position_embeddings = k.integer("max_position_embeddings", v2 ? 2048 : 4096);
  k.require_positive("max_position_embeddings", c.max_position_embeddings);
  c.rope = parse_rope(k, c);
  // V2 always stores rope dims as adjacent pairs (HF rotates them as complex numbers).
  c.rope_interleave = v2 ? true : k.boolean("rope_interleave", true);
  c.rms_norm_eps = k.number("rms_norm_eps", 1e-6);
  c.initializer_range = k.number("initializer_range", 0.02);
  c.tie_word_embeddings = k.boolean("tie_word_embeddings", false);
  if (k.has("bos_token_id")) {
    if (k.has_value("bos_token_id")) c.bos_token_id = k.integer("bos_token_id");
  } else {
    c.bos_token_id = v2 ? 1 : 0;
  }
  c.eos_token_ids = k.eos_ids(v2 ? 2 : 1);
  c.num_nextn_predict_layers = k.integer("num_nextn_predict_layers", 0);
  if (c.num_nextn_predict_layers < 0) k.fail("num_nextn_predict_layers", "must be >= 0");
  if (!(c.rms_norm_eps > 0)) k.fail("rms_norm_eps", "must be > 0");
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string file;
  const json j = read_config_json(path, &file);
  return from_json(j, file);
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
}

double ModelConfig::softmax_scale() const {
  double s = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope.type == "yarn" && rope.mscale_all_dim != 0.0 && rope.factor > 1.0) {
    double m = 0.1 * rope.mscale_all_dim * std::log(rope.factor) + 1.0;
    s *= m * m;
  }
  return s;
}

}  // namespace grpo
