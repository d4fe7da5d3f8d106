#include "model/dense_decoder.h"

#include <ATen/core/grad_mode.h>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/json_keys.h"
#include "model/lm_spec_of.h"
#include "model/name_listing.h"
#include "model/project.h"
#include "model/rms_norm.h"
#include "model/rope.h"
#include "model/shape_text.h"

namespace grpo {
namespace {

using nlohmann::json;

// rope_theta from the top level or HF 5.x rope_parameters; only plain RoPE is supported.
double parse_rope_theta(const JsonKeys& k) {
  if (k.has_value("rope_scaling"))
    k.fail("rope_scaling", "unsupported (expected null: the dense decoder has plain RoPE only)");
  double theta = k.number("rope_theta", 10000.0);
  if (k.has_value("rope_parameters")) {
    const JsonKeys p = k.sub("rope_parameters");
    const std::string type = p.string("rope_type", p.string("type", "default"));
    if (type != "default") p.fail("rope_type", "unsupported rope type '" + type + "' (expected default)");
    theta = p.number("rope_theta", theta);
  }
  if (!(theta > 0)) k.fail("rope_theta", "must be > 0");
  return theta;
}

// x: [B, T, n·Dh] -> [B, n, T, Dh]
at::Tensor split_heads(const at::Tensor& x, int64_t n, int64_t dh) {
  return x.view({x.size(0), x.size(1), n, dh}).transpose(1, 2);
}

at::Tensor project_bias(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return b.defined() ? at::linear(x, like(w, x), like(b, x)) : project(x, w);
}

}  // namespace

DenseConfig DenseConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source + ": expected a JSON object");
  const JsonKeys k(j, source);
  DenseConfig c;
  c.raw = j;
  c.model_type = k.string("model_type", "");
  if (c.model_type != "llama" && c.model_type != "qwen2")
    k.fail("model_type", c.model_type.empty() ? "missing (expected llama or qwen2)"
                                              : "unknown model_type '" + c.model_type + "' (expected llama or qwen2)");
  const bool qwen2 = c.model_type == "qwen2";
  c.vocab_size = k.integer("vocab_size");
  c.hidden_size = k.integer("hidden_size");
  c.intermediate_size = k.integer("intermediate_size");
  c.num_hidden_layers = k.integer("num_hidden_layers");
  c.num_attention_heads = k.integer("num_attention_heads");
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"})
    k.require_positive(key, k.integer(key));
  k.require_memory("vocab_size", 4.0 * static_cast<double>(c.vocab_size) * static_cast<double>(c.hidden_size),
                   "the embedding table (vocab_size x hidden_size fp32 values)");
  c.num_key_value_heads = k.integer("num_key_value_heads", c.num_attention_heads);
  k.require_positive("num_key_value_heads", c.num_key_value_heads);
  if (c.num_attention_heads % c.num_key_value_heads)
    k.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(c.num_attention_heads) + ")");
  c.head_dim = k.integer("head_dim", c.hidden_size / c.num_attention_heads);
  k.require_positive("head_dim", c.head_dim);
  if (c.head_dim % 2) k.fail("head_dim", "must be even (RoPE rotates pairs)");

  const bool attention_bias = k.boolean("attention_bias", false);
  c.qkv_bias = qwen2 || attention_bias;
  c.o_bias = !qwen2 && attention_bias;
  if (k.boolean("mlp_bias", false)) k.fail("mlp_bias", "biases in the MLP are not supported (expected false)");
  if (k.string("hidden_act", "silu") != "silu")
    k.fail("hidden_act", "unsupported activation '" + k.string("hidden_act", "") + "' (expected silu)");
  if (k.boolean("use_sliding_window", false))
    k.fail("use_sliding_window", "sliding-window attention is not supported (expected false)");
  c.rope_theta = parse_rope_theta(k);
  c.rms_norm_eps = k.number("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0)) k.fail("rms_norm_eps", "must be > 0");
  c.initializer_range = k.number("initializer_range", 0.02);
  c.max_position_embeddings = k.integer("max_position_embeddings", qwen2 ? 32768 : 2048);
  k.require_positive("max_position_embeddings", c.max_position_embeddings);
  c.tie_word_embeddings = k.boolean("tie_word_embeddings", false);
  if (k.has_value("bos_token_id"))
    c.bos_token_id = k.integer("bos_token_id");
  else if (!k.has("bos_token_id") && !qwen2)
    c.bos_token_id = 1;
  c.eos_token_ids = k.has("eos_token_id") || !qwen2 ? k.eos_ids(2) : std::vector<int64_t>{};
  return c;
}

DenseConfig DenseConfig::load(const std::string& path) {
  std::string file;
  const json j = read_config_json(path, &file);
  return from_json(j, file);
}

bool is_dense_config(const json& config) {
  if (!config.is_object() || !config.contains("model_type") || !config["model_type"].is_string()) return false;
  const std::string t = config["model_type"].get<std::string>();
  return t == "llama" || t == "qwen2";
}

DenseDecoder::DenseDecoder(DenseConfig config, ModelOptions options) : config_(std::move(config)), options_(options) {
  for (at::ScalarType t : {options_.compute_dtype, options_.param_dtype})
    if (t != at::kFloat && t != at::kBFloat16 && t != at::kDouble)
      throw InputError(std::string("model dtype must be float32, bfloat16 or float64, got ") + c10::toString(t));
  if (options_.fp8 || options_.mtp || options_.expert_ranks != 1)
    throw InputError("dense decoder: FP8 weights, MTP and expert parallelism are not supported");
  const auto o = at::TensorOptions().dtype(options_.param_dtype).device(options_.device);
  const DenseConfig& c = config_;
  const int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  embed_tokens_ = at::zeros({c.vocab_size, d}, o);
  norm_ = at::zeros({d}, o);
  if (!c.tie_word_embeddings) lm_head_ = at::zeros({c.vocab_size, d}, o);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    DenseLayer l;
    l.input_layernorm = at::zeros({d}, o);
    l.post_attention_layernorm = at::zeros({d}, o);
    l.q_proj = at::zeros({q, d}, o);
    l.k_proj = at::zeros({kv, d}, o);
    l.v_proj = at::zeros({kv, d}, o);
    l.o_proj = at::zeros({d, q}, o);
    if (c.qkv_bias) {
      l.q_bias = at::zeros({q}, o);
      l.k_bias = at::zeros({kv}, o);
      l.v_bias = at::zeros({kv}, o);
    }
    if (c.o_bias) l.o_bias = at::zeros({d}, o);
    l.mlp = {at::zeros({c.intermediate_size, d}, o), at::zeros({c.intermediate_size, d}, o),
             at::zeros({d, c.intermediate_size}, o)};
    layers_.push_back(std::move(l));
  }
}

std::vector<std::pair<std::string, at::Tensor*>> DenseDecoder::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor*>> out;
  auto f = [&](const std::string& n, at::Tensor& t) {
    if (t.defined()) out.emplace_back(n, &t);
  };
  f("model.embed_tokens.weight", embed_tokens_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    DenseLayer& l = layers_[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    f(p + "input_layernorm.weight", l.input_layernorm);
    f(p + "self_attn.q_proj.weight", l.q_proj);
    f(p + "self_attn.q_proj.bias", l.q_bias);
    f(p + "self_attn.k_proj.weight", l.k_proj);
    f(p + "self_attn.k_proj.bias", l.k_bias);
    f(p + "self_attn.v_proj.weight", l.v_proj);
    f(p + "self_attn.v_proj.bias", l.v_bias);
    f(p + "self_attn.o_proj.weight", l.o_proj);
    f(p + "self_attn.o_proj.bias", l.o_bias);
    f(p + "post_attention_layernorm.weight", l.post_attention_layernorm);
    f(p + "mlp.gate_proj.weight", l.mlp.gate_proj.weight);
    f(p + "mlp.up_proj.weight", l.mlp.up_proj.weight);
    f(p + "mlp.down_proj.weight", l.mlp.down_proj.weight);
  }
  f("model.norm.weight", norm_);
  if (!config_.tie_word_embeddings) f("lm_head.weight", lm_head_);
  return out;
}

std::map<std::string, at::Tensor> DenseDecoder::state_dict() const {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : const_cast<DenseDecoder*>(this)->named_parameters()) out[name] = t->detach();
  return out;
}

void DenseDecoder::set_requires_grad(bool on) {
  for (auto& [name, t] : named_parameters()) t->requires_grad_(on);
}

void DenseDecoder::load_state(const std::map<std::string, at::Tensor>& weights, const std::string& source) {
  auto params = named_parameters();
  std::map<std::string, at::Tensor*> expected(params.begin(), params.end());
  std::vector<std::string> missing, unexpected;
  for (auto& [name, t] : params) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != t->sizes())
      throw InputError(source + ": " + name + ": expected shape " + shape_str(t->sizes()) + ", got " +
                       shape_str(it->second.sizes()));
    if (!at::isFloatingType(it->second.scalar_type()))
      throw InputError(source + ": " + name + ": expected a floating-point tensor, got " +
                       c10::toString(it->second.scalar_type()));
  }
  for (const auto& [name, w] : weights) {
    if (expected.count(name)) continue;
    if (name == "lm_head.weight" && config_.tie_word_embeddings) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    unexpected.push_back(name);
  }
  if (!missing.empty()) throw InputError(source + ": missing tensors: " + name_listing(missing));
  if (!unexpected.empty()) throw InputError(source + ": unexpected tensors: " + name_listing(unexpected));
  at::NoGradGuard no_grad;
  for (auto& [name, t] : params)
    *t = weights.at(name).to(options_.device, options_.param_dtype, false, true).contiguous();
}

at::Tensor DenseDecoder::attention(const DenseLayer& l, const at::Tensor& x, const at::Tensor& cos,
                                   const at::Tensor& sin, const LatentChunk& chunk, at::Tensor& mask,
                                   LatentContext* context, int64_t index) const {
  int64_t b = x.size(0), t = x.size(1);
  const int64_t h = config_.num_attention_heads, hkv = config_.num_key_value_heads, dh = config_.head_dim;
  at::Tensor q = split_heads(project_bias(x, l.q_proj, l.q_bias), h, dh);    // [B, H, T, Dh]
  at::Tensor k = split_heads(project_bias(x, l.k_proj, l.k_bias), hkv, dh);  // [B, Hkv, T, Dh]
  at::Tensor v = split_heads(project_bias(x, l.v_proj, l.v_bias), hkv, dh);  // [B, Hkv, T, Dh]
  q = apply_rope(q, cos, sin, /*interleaved=*/false);
  k = apply_rope(k, cos, sin, /*interleaved=*/false);
  at::Tensor slots = chunk.slots;
  const bool packed = !chunk.packed.empty();
  if (packed) {  // the sequences as padded rows [n, ., L, Dh], each seeing its own keys
    auto rows = [&](const at::Tensor& y) { return packed_to_rows(y.transpose(1, 2), chunk).transpose(1, 2); };
    q = rows(q), k = rows(k), v = rows(v);
    b = q.size(0), t = q.size(2);
    slots = at::arange(t, chunk.slots.options()).unsqueeze(0).expand({b, t});
  }
  if (context) {
    // One cache row per token: [k | v] over the kv heads, [B, T, 2·Hkv·Dh].
    const at::Tensor row =
        at::cat({k.transpose(1, 2).reshape({b, t, hkv * dh}), v.transpose(1, 2).reshape({b, t, hkv * dh})}, -1);
    const at::Tensor keys = context->store(index, row);  // [B, S, 2·Hkv·Dh]
    const int64_t s = keys.size(1);
    k = keys.narrow(-1, 0, hkv * dh).view({b, s, hkv, dh}).transpose(1, 2);         // [B, Hkv, S, Dh]
    v = keys.narrow(-1, hkv * dh, hkv * dh).view({b, s, hkv, dh}).transpose(1, 2);  // [B, Hkv, S, Dh]
  }
  const int64_t s = k.size(2), rep = h / hkv;
  if (!mask.defined() || mask.size(-1) != s) {  // the same for every layer: built once per forward
    const at::Tensor allowed = at::arange(s, slots.options()).view({1, 1, s}) <= slots.unsqueeze(-1);  // [B, T, S]
    mask = at::zeros({b, t, s}, x.options())
               .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity())
               .view({b, 1, 1, t, s});
  }
  at::Tensor qg = q.reshape({b, hkv, rep * t, dh});  // query head h = kv head h / rep, rows (rep, T)
  at::Tensor scores = at::matmul(qg, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(dh));  // [B, Hkv, rep·T, S]
  scores = scores.view({b, hkv, rep, t, s}) + mask;                                              // mask [B, 1, 1, T, S]
  const at::ScalarType dtype = x.scalar_type();
  at::Tensor probs = dtype == at::kDouble ? scores.softmax(-1) : scores.to(at::kFloat).softmax(-1).to(dtype);
  at::Tensor out = at::matmul(probs.view({b, hkv, rep * t, s}), v);       // [B, Hkv, rep·T, Dh]
  out = out.view({b, h, t, dh}).transpose(1, 2).reshape({b, t, h * dh});  // [B, T, H·Dh]
  if (packed) out = rows_to_packed(out, chunk);                           // [1, T_packed, H·Dh]
  return project_bias(out, l.o_proj, l.o_bias);                           // [B, T, D]
}

at::Tensor DenseDecoder::hidden(const at::Tensor& ids_in, const Feed& feed) const {
  TORCH_CHECK(ids_in.dim() == 2, "dense decoder: ids must be [B, T]");
  const at::Tensor ids = ids_in.to(options_.device);
  const int64_t b = ids.size(0), t = ids.size(1);
  const at::ScalarType dtype = options_.compute_dtype;
  // slots[b, i]: the position of query i in its row's sequence; it sees the keys s <= slots[b, i].
  const LatentChunk chunk = begin_chunk(feed.context, feed.packed, b, t, options_.device);
  at::Tensor positions = feed.positions.defined() ? feed.positions.to(options_.device) : chunk.slots;
  if (positions.dim() == 1) positions = positions.unsqueeze(0).expand({b, t});

  RopeConfig rope;
  rope.theta = config_.rope_theta;
  at::Tensor angles = positions.to(at::kDouble).unsqueeze(-1) *
                      rope_inv_freq(rope, config_.head_dim).to(positions.device());                 // [B, T, Dh/2]
  at::Tensor cos = angles.cos().to(dtype).unsqueeze(1), sin = angles.sin().to(dtype).unsqueeze(1);  // [B, 1, T, Dh/2]

  const double eps = config_.rms_norm_eps;
  at::Tensor mask;  // [B, 1, 1, T, S], built by the first layer once S is known
  at::Tensor x = at::embedding(embed_tokens_, ids).to(dtype);  // [B, T, D]
  for (size_t i = 0; i < layers_.size(); ++i) {
    const DenseLayer& l = layers_[i];
    x = x + attention(l, rms_norm(x, like(l.input_layernorm, x), eps), cos, sin, chunk, mask, feed.context,
                      static_cast<int64_t>(i));
    at::Tensor y = rms_norm(x, like(l.post_attention_layernorm, x), eps);
    x = x + mlp_forward(l.mlp, y.reshape({b * t, -1})).view({b, t, -1});
  }
  if (feed.context) feed.context->commit();
  return rms_norm(x, like(norm_, x), eps);
}

at::Tensor DenseDecoder::logits(const at::Tensor& ids, const Feed& feed) const {
  return head_logits(hidden(ids, feed), lm_head());
}

at::Tensor DenseDecoder::logits_at(const at::Tensor& h, const at::Tensor& rows) const {
  return head_logits(h.reshape({-1, h.size(-1)}).index_select(0, rows.to(h.device())), lm_head());
}

LmSpec DenseDecoder::spec() const {
  const DenseConfig& c = config_;
  LmSpec s = lm_spec_of(c);
  s.cache_width = 2 * c.num_key_value_heads * c.head_dim;
  s.mha_cache_width = 2 * c.num_attention_heads * c.head_dim;
  return s;
}

std::unique_ptr<CausalLM> DenseDecoder::make_empty(const ModelOptions& options) const {
  return std::make_unique<DenseDecoder>(config_, options);
}

std::vector<std::pair<std::string, at::Tensor>> DenseDecoder::named_trainable() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [name, t] : named_parameters()) out.emplace_back(name, *t);
  return out;
}

}  // namespace grpo
