#include "model/deepseek.h"

#include <ATen/core/grad_mode.h>
#include <cstdlib>
#include <stdexcept>

#include "common/error.h"
#include "model/fp8.h"
#include "model/fused_layer.h"
#include "model/lm_spec_of.h"
#include "model/name_listing.h"
#include "model/project.h"
#include "model/rms_norm.h"
#include "model/rope.h"
#include "model/shape_text.h"

namespace grpo {
namespace {

// A zero linear weight [out, in]: dense in the parameter dtype, or FP8 codes with unit scales.
// With fp8_activations the FP8 weight also quantises its input activations (W8A8).
Linear make_linear(int64_t out, int64_t in, const at::TensorOptions& o, const ModelOptions& mo) {
  if (!mo.fp8) return {at::zeros({out, in}, o), {}};
  auto blocks = [](int64_t n) { return (n + kFp8BlockSize - 1) / kFp8BlockSize; };
  Linear w{at::zeros({out, in}, o.dtype(at::kFloat8_e4m3fn)), at::ones({blocks(out), blocks(in)}, o.dtype(at::kFloat))};
  w.quantize_activations = mo.fp8_activations;
  return w;
}

MlpWeights make_mlp(int64_t d, int64_t inter, const at::TensorOptions& o, const ModelOptions& mo) {
  return {make_linear(inter, d, o, mo), make_linear(inter, d, o, mo), make_linear(d, inter, o, mo)};
}

DecoderLayer make_layer(const ModelConfig& c, int64_t index, const at::TensorOptions& o, const ModelOptions& mo) {
  const int64_t d = c.hidden_size, h = c.num_attention_heads;
  DecoderLayer l;
  l.input_layernorm = at::zeros({d}, o);
  l.post_attention_layernorm = at::zeros({d}, o);
  MlaWeights& a = l.self_attn;
  if (c.q_lora_rank) {
    a.q_a_proj = make_linear(*c.q_lora_rank, d, o, mo);
    a.q_a_layernorm = at::zeros({*c.q_lora_rank}, o);
    a.q_b_proj = make_linear(h * c.qk_head_dim(), *c.q_lora_rank, o, mo);
  } else {
    a.q_proj = make_linear(h * c.qk_head_dim(), d, o, mo);
  }
  a.kv_a_proj_with_mqa = make_linear(c.kv_lora_rank + c.qk_rope_head_dim, d, o, mo);
  a.kv_a_layernorm = at::zeros({c.kv_lora_rank}, o);
  a.kv_b_proj = make_linear(h * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, o, mo);
  a.o_proj = make_linear(d, h * c.v_head_dim, o, mo);
  l.is_moe = c.is_moe_layer(index);
  if (!l.is_moe) {
    l.mlp = make_mlp(d, c.intermediate_size, o, mo);
    return l;
  }
  // The router and its bias stay fp32 (or fp64): the gate runs in at least fp32.
  auto ro = o.dtype(o.dtype() == at::kDouble ? at::kDouble : at::kFloat);
  l.moe.gate = at::zeros({c.n_routed_experts, d}, ro);
  if (c.topk_method == TopkMethod::kNoauxTc) l.moe.e_score_correction_bias = at::zeros({c.n_routed_experts}, ro);
  const int64_t local = c.n_routed_experts / mo.expert_ranks;
  l.moe.first_expert = mo.expert_rank * local;
  for (int64_t e = 0; e < local; ++e) l.moe.experts.push_back(make_mlp(d, c.moe_intermediate_size, o, mo));
  if (c.n_shared_experts > 0) l.moe.shared_experts = make_mlp(d, c.moe_intermediate_size * c.n_shared_experts, o, mo);
  return l;
}

using Visitor = std::function<void(const std::string&, at::Tensor&)>;

// A linear weight is `name` (weights or FP8 codes) and, for FP8, `name_scale_inv` (block scales).
void visit_linear(Linear& w, const std::string& name, const Visitor& f) {
  f(name, w.weight);
  if (w.is_fp8()) f(name + kFp8ScaleSuffix, w.scale_inv);
}

void visit_mlp(MlpWeights& m, const std::string& p, const Visitor& f) {
  visit_linear(m.gate_proj, p + "gate_proj.weight", f);
  visit_linear(m.up_proj, p + "up_proj.weight", f);
  visit_linear(m.down_proj, p + "down_proj.weight", f);
}

void visit_layer(DecoderLayer& l, const std::string& p, const Visitor& f) {
  f(p + "input_layernorm.weight", l.input_layernorm);
  f(p + "post_attention_layernorm.weight", l.post_attention_layernorm);
  MlaWeights& a = l.self_attn;
  const std::string s = p + "self_attn.";
  if (a.q_proj.weight.defined()) {
    visit_linear(a.q_proj, s + "q_proj.weight", f);
  } else {
    visit_linear(a.q_a_proj, s + "q_a_proj.weight", f);
    f(s + "q_a_layernorm.weight", a.q_a_layernorm);
    visit_linear(a.q_b_proj, s + "q_b_proj.weight", f);
  }
  visit_linear(a.kv_a_proj_with_mqa, s + "kv_a_proj_with_mqa.weight", f);
  f(s + "kv_a_layernorm.weight", a.kv_a_layernorm);
  visit_linear(a.kv_b_proj, s + "kv_b_proj.weight", f);
  visit_linear(a.o_proj, s + "o_proj.weight", f);
  const std::string m = p + "mlp.";
  if (!l.is_moe) {
    visit_mlp(l.mlp, m, f);
    return;
  }
  f(m + "gate.weight", l.moe.gate);
  if (l.moe.e_score_correction_bias.defined()) f(m + "gate.e_score_correction_bias", l.moe.e_score_correction_bias);
  for (size_t e = 0; e < l.moe.experts.size(); ++e)
    visit_mlp(l.moe.experts[e], m + "experts." + std::to_string(l.moe.first_expert + e) + ".", f);
  if (l.moe.shared_experts.gate_proj.weight.defined()) visit_mlp(l.moe.shared_experts, m + "shared_experts.", f);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_buffer(const std::string& name) { return ends_with(name, "e_score_correction_bias"); }

// The global number of a routed expert's tensor ("...mlp.experts.N...."), or -1.
int64_t routed_expert_of(const std::string& name) {
  static const std::string key = ".mlp.experts.";
  const size_t at = name.find(key);
  return at == std::string::npos ? -1 : std::atoll(name.c_str() + at + key.size());
}

// Feed::replay checked against the model and flattened: [B, T, L_moe, k] -> [B·T, L_moe, k]. InputError for a wrong
// shape or dtype, or an id outside [-1, E).
at::Tensor checked_replay(const at::Tensor& replay, int64_t b, int64_t t, int64_t moe_layers, const ModelConfig& c) {
  const std::vector<int64_t> want{b, t, moe_layers, c.num_experts_per_tok};
  if (replay.sizes() != at::IntArrayRef(want) || replay.scalar_type() != at::kLong)
    throw InputError("model input: routing replay of shape " + shape_str(replay.sizes()) + " " +
                     c10::toString(replay.scalar_type()) + ", expected int64 " + shape_str(want) +
                     " (batch, tokens, MoE layers, num_experts_per_tok)");
  if (replay.numel() > 0) {
    const int64_t lo = replay.min().item<int64_t>(), hi = replay.max().item<int64_t>();
    if (lo < -1 || hi >= c.n_routed_experts)
      throw InputError("model input: routing replay expert id " + std::to_string(lo < -1 ? lo : hi) + " outside [0, " +
                       std::to_string(c.n_routed_experts) + ") (-1: not replayed)");
  }
  return replay.reshape({b * t, moe_layers, c.num_experts_per_tok});
}

}  // namespace

DeepseekModel::DeepseekModel(ModelConfig config, ModelOptions options)
    : config_(std::move(config)), options_(options), gate_(GateSpec::from(config_)) {
  for (at::ScalarType t : {options_.compute_dtype, options_.param_dtype})
    if (t != at::kFloat && t != at::kBFloat16 && t != at::kDouble)
      throw InputError(std::string("model dtype must be float32, bfloat16 or float64, got ") + c10::toString(t));
  if (options_.fp8_activations && !options_.fp8)
    throw InputError("model options: fp8_activations needs fp8 (FP8 linear weights)");
  if (options_.expert_ranks < 1 || options_.expert_rank < 0 || options_.expert_rank >= options_.expert_ranks)
    throw InputError("model options: expert_rank " + std::to_string(options_.expert_rank) + " outside [0, " +
                     std::to_string(options_.expert_ranks) + ")");
  if (options_.expert_ranks > 1 && config_.n_routed_experts % options_.expert_ranks != 0)
    throw InputError("model options: n_routed_experts (" + std::to_string(config_.n_routed_experts) +
                     ") is not divisible by the " + std::to_string(options_.expert_ranks) + " expert-parallel ranks");
  if (options_.fp8 && !options_.device.is_cpu())
    throw InputError("model options: FP8 weights run on the CPU only for now; on " + options_.device.str() +
                     " use bf16");
  const auto o = at::TensorOptions().dtype(options_.param_dtype).device(options_.device);
  const int64_t v = config_.vocab_size, d = config_.hidden_size;
  inv_freq_ = rope_inv_freq(config_.rope, config_.qk_rope_head_dim).to(options_.device);
  embed_tokens_ = at::zeros({v, d}, o);
  norm_ = at::zeros({d}, o);
  if (!config_.tie_word_embeddings) lm_head_ = at::zeros({v, d}, o);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) layers_.push_back(make_layer(config_, i, o, options_));
  if (options_.mtp) {
    for (int64_t k = 0; k < config_.num_nextn_predict_layers; ++k) {
      MtpModule m;
      m.enorm = at::zeros({d}, o);
      m.hnorm = at::zeros({d}, o);
      m.eh_proj = make_linear(d, 2 * d, o, options_);
      m.embed_tokens = at::zeros({v, d}, o);
      m.shared_head_norm = at::zeros({d}, o);
      m.shared_head_head = at::zeros({v, d}, o);
      m.block = make_layer(config_, config_.num_hidden_layers + k, o, options_);
      mtp_.push_back(std::move(m));
    }
  }
}

std::vector<std::pair<std::string, at::Tensor*>> DeepseekModel::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor*>> out;
  Visitor f = [&](const std::string& n, at::Tensor& t) { out.emplace_back(n, &t); };
  f("model.embed_tokens.weight", embed_tokens_);
  for (size_t i = 0; i < layers_.size(); ++i) visit_layer(layers_[i], "model.layers." + std::to_string(i) + ".", f);
  f("model.norm.weight", norm_);
  if (!config_.tie_word_embeddings) f("lm_head.weight", lm_head_);
  for (size_t k = 0; k < mtp_.size(); ++k) {
    MtpModule& m = mtp_[k];
    const std::string p = "model.layers." + std::to_string(config_.num_hidden_layers + k) + ".";
    f(p + "enorm.weight", m.enorm);
    f(p + "hnorm.weight", m.hnorm);
    visit_linear(m.eh_proj, p + "eh_proj.weight", f);
    f(p + "embed_tokens.weight", m.embed_tokens);
    f(p + "shared_head.norm.weight", m.shared_head_norm);
    f(p + "shared_head.head.weight", m.shared_head_head);
    visit_layer(m.block, p, f);
  }
  return out;
}

std::map<std::string, at::Tensor> DeepseekModel::state_dict() const {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : const_cast<DeepseekModel*>(this)->named_parameters()) out[name] = t->detach();
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> DeepseekModel::named_trainable() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [name, t] : named_parameters())
    if (!is_buffer(name)) out.emplace_back(name, *t);
  return out;
}

LmSpec DeepseekModel::spec() const {
  const ModelConfig& c = config_;
  LmSpec s = lm_spec_of(c);
  s.cache_width = c.kv_lora_rank + c.qk_rope_head_dim;
  s.mha_cache_width = c.num_attention_heads * (c.qk_head_dim() + c.v_head_dim);
  for (const DecoderLayer& l : layers_) s.moe_layers += l.is_moe ? 1 : 0;
  if (s.moe_layers > 0) {
    s.num_experts_per_tok = c.num_experts_per_tok;
    s.n_routed_experts = c.n_routed_experts;
  }
  return s;
}

std::unique_ptr<CausalLM> DeepseekModel::make_empty(const ModelOptions& options) const {
  return std::make_unique<DeepseekModel>(config_, options);
}

void DeepseekModel::set_requires_grad(bool on) {
  for (auto& [name, t] : named_parameters())
    if (!is_buffer(name)) t->requires_grad_(on);
}

void DeepseekModel::load_state(const std::map<std::string, at::Tensor>& weights, const std::string& source) {
  auto params = named_parameters();
  const std::map<std::string, at::Tensor*> expected(params.begin(), params.end());
  auto check_shape = [&](const std::string& name, const at::Tensor& got, at::IntArrayRef want) {
    if (got.sizes() != want)
      throw InputError(source + ": " + name + ": expected shape " + shape_str(want) + ", got " +
                       shape_str(got.sizes()));
  };
  auto check_float = [&](const std::string& name, const at::Tensor& got) {
    if (!at::isFloatingType(got.scalar_type()))
      throw InputError(source + ": " + name + ": expected a floating-point tensor, got " +
                       c10::toString(got.scalar_type()));
  };
  auto is_scale = [](const std::string& name) { return ends_with(name, kFp8ScaleSuffix); };
  auto scale_of = [](const std::string& name) { return name + kFp8ScaleSuffix; };

  // 1. Names, shapes and dtypes, before anything is converted.
  std::vector<std::string> missing;
  for (auto& [name, t] : params) {
    if (is_scale(name)) continue;  // checked with its codes
    auto it = weights.find(name);
    if (it == weights.end()) {
      missing.push_back(name);
      continue;
    }
    check_shape(name, it->second, t->sizes());
    const bool fp8_codes = t->scalar_type() == at::kFloat8_e4m3fn;
    auto scale = weights.find(scale_of(name));
    if (fp8_codes && scale != weights.end()) {  // FP8 as stored: codes + block scales
      if (it->second.scalar_type() != at::kFloat8_e4m3fn)
        throw InputError(source + ": " + name + ": has " + scale->first +
                         " beside it, so expected FP8 e4m3 codes (F8_E4M3), got " +
                         c10::toString(it->second.scalar_type()));
      const std::string scale_name = scale_of(name);
      check_shape(scale_name, scale->second, expected.at(scale_name)->sizes());
      check_float(scale_name, scale->second);
    } else {
      check_float(name, it->second);
      if (c10::isFloat8Type(it->second.scalar_type()) && scale != weights.end())
        throw InputError(source + ": " + name + ": FP8 codes with " + scale->first +
                         " beside them, but this model holds " + c10::toString(t->scalar_type()) +
                         " weights (send it dense weights, or run it with FP8 weights)");
    }
  }
  const std::string mtp_prefix = "model.layers.";
  std::vector<std::string> unexpected;
  for (const auto& [name, w] : weights) {
    if (expected.count(name)) continue;
    if (name == "lm_head.weight" && config_.tie_word_embeddings) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    if (options_.expert_ranks > 1 && routed_expert_of(name) >= 0) {
      const int64_t local = config_.n_routed_experts / options_.expert_ranks;
      if (routed_expert_of(name) / local != options_.expert_rank) continue;  // another shard's expert
    }
    if (!options_.mtp && name.rfind(mtp_prefix, 0) == 0) {
      int64_t layer = std::atoll(name.c_str() + mtp_prefix.size());
      if (layer >= config_.num_hidden_layers) continue;  // MTP weights of a model built without MTP
    }
    unexpected.push_back(name);
  }
  if (!missing.empty()) throw InputError(source + ": missing tensors: " + name_listing(missing));
  if (!unexpected.empty()) throw InputError(source + ": unexpected tensors: " + name_listing(unexpected));

  // 2. Convert everything (FP8 quantisation can still fail on inf/NaN), then 3. assign.
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> staged;
  for (auto& [name, t] : params) {
    if (is_scale(name)) continue;
    const at::Tensor& w = weights.at(name);
    if (t->scalar_type() != at::kFloat8_e4m3fn) {
      staged[name] =
          w.to(t->device(), t->scalar_type()).contiguous();  // shares storage with `weights` when nothing changes
      continue;
    }
    auto scale = weights.find(scale_of(name));
    if (scale != weights.end()) {
      staged[name] = w.to(t->device()).contiguous();
      staged[scale_of(name)] = scale->second.to(t->device(), at::kFloat).contiguous();
      continue;
    }
    Linear q;
    try {
      q = quantize_linear(w);
    } catch (const InputError& e) {
      throw InputError(source + ": " + name + ": " + e.what());
    }
    staged[name] = q.weight.to(t->device());
    staged[scale_of(name)] = q.scale_inv.to(t->device());
  }
  for (auto& [name, t] : params) {
    bool grad = t->requires_grad();
    *t = staged.at(name);
    if (grad) t->requires_grad_(true);
  }
}

at::Tensor DeepseekModel::embed(const at::Tensor& table, const at::Tensor& ids) const {
  return at::embedding(table, ids).to(options_.compute_dtype);
}

at::Tensor DeepseekModel::head(const at::Tensor& weight, const at::Tensor& h) const { return head_logits(h, weight); }

at::Tensor DeepseekModel::decoder_layer(const DecoderLayer& l, const at::Tensor& x, const at::Tensor& cos,
                                        const at::Tensor& sin, const LatentChunk& chunk, LatentContext* context,
                                        int64_t index, AttentionForm form, const MoeFeed& moe) const {
  if (fused_layer_applies(l, x, form, moe.tokens.defined(), options_.expert_ranks > 1))
    return fused_decoder_layer(l, config_, gate_, x, cos, sin,
                               FusedLayerCall{chunk, context, index, moe.replay, moe.load, moe.routes, moe.chosen});
  const double eps = config_.rms_norm_eps;
  at::Tensor attn_in = rms_norm(x, like(l.input_layernorm, x), eps);
  at::Tensor h = x + mla_forward(l.self_attn, config_, attn_in, cos, sin, chunk, context, index, form);  // [B, T, D]
  at::Tensor y = rms_norm(h, like(l.post_attention_layernorm, h), eps);
  if (l.is_moe && options_.expert_ranks > 1 && !routed_experts_)
    throw std::logic_error("an expert-sharded model needs set_routed_experts before it runs");
  at::Tensor ffn = l.is_moe ? moe_forward(l.moe, gate_, y.reshape({-1, y.size(-1)}), moe.load, routed_experts_.get(),
                                          moe.tokens, moe.replay, moe.routes, moe.chosen)
                                  .view_as(y)
                            : mlp_forward(l.mlp, y);
  return h + ffn;
}

at::Tensor DeepseekModel::hidden_states(const at::Tensor& ids, const at::Tensor& positions, LatentContext* context,
                                        AttentionForm form, std::vector<at::Tensor>* expert_load,
                                        const at::Tensor& tokens) const {
  Feed feed;
  feed.positions = positions;
  feed.context = context;
  feed.expert_load = expert_load;
  feed.tokens = tokens;
  return run_layers(ids, feed, form);
}

at::Tensor DeepseekModel::run_layers(const at::Tensor& ids_in, const Feed& feed, AttentionForm form) const {
  const at::Device device = options_.device;
  const at::Tensor ids = ids_in.to(device);
  const at::Tensor positions = feed.positions.defined() ? feed.positions.to(device) : at::Tensor();
  const at::Tensor tokens = feed.tokens.defined() ? feed.tokens.to(device) : at::Tensor();
  LatentContext* context = feed.context;
  if (ids.dim() != 2 || ids.scalar_type() != at::kLong)
    throw InputError("model input: expected int64 ids of shape [B, T], got " + shape_str(ids.sizes()) + " " +
                     c10::toString(ids.scalar_type()));
  const int64_t b = ids.size(0), t = ids.size(1);
  if (t == 0) throw InputError("model input: empty sequence");
  // No rows (an expert-parallel rank's pass without rows of its own) has no ids to check.
  const int64_t lo = b ? ids.min().item<int64_t>() : 0, hi = b ? ids.max().item<int64_t>() : 0;
  if (lo < 0 || hi >= config_.vocab_size)
    throw InputError("model input: token id " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                     std::to_string(config_.vocab_size) + ")");
  // One more layer holds an MTP module's keys (mtp_hidden), unused here.
  if (context && context->num_layers() != config_.num_hidden_layers &&
      context->num_layers() != config_.num_hidden_layers + 1)
    throw InputError("latent cache has " + std::to_string(context->num_layers()) + " layers, the model " +
                     std::to_string(config_.num_hidden_layers) + " (+1 for an MTP module's keys)");
  LatentChunk chunk = begin_chunk(context, feed.packed, b, t, device);
  at::Tensor pos = positions.defined() ? positions : chunk.slots;
  if (pos.dim() == 1) pos = pos.unsqueeze(0);
  pos = pos.expand({b, t});
  auto [cos, sin] = rope_cos_sin(config_, pos, options_.compute_dtype, inv_freq_);  // [B, T, rope/2]

  if (tokens.defined() && tokens.sizes() != ids.sizes())
    throw InputError("model input: token mask of shape " + shape_str(tokens.sizes()) + " for ids of shape " +
                     shape_str(ids.sizes()));
  const at::Tensor routed_tokens = tokens.defined() ? tokens.reshape({-1}).to(at::kBool) : at::Tensor();  // [B·T]
  const at::Tensor replay = feed.replay.defined()
                                ? checked_replay(feed.replay.to(device), b, t, spec().moe_layers, config_)
                                : at::Tensor();  // [B·T, L_moe, k] or undefined
  at::Tensor x = embed(embed_tokens_, ids);      // [B, T, D]
  if (feed.expert_load) feed.expert_load->assign(layers_.size(), at::Tensor());
  if (feed.routes) feed.routes->assign(layers_.size(), at::Tensor());
  if (feed.router_choice) feed.router_choice->assign(layers_.size(), at::Tensor());
  for (size_t i = 0, moe_index = 0; i < layers_.size(); ++i) {
    MoeFeed moe{routed_tokens,
                {},
                feed.expert_load ? &(*feed.expert_load)[i] : nullptr,
                feed.routes ? &(*feed.routes)[i] : nullptr,
                feed.router_choice ? &(*feed.router_choice)[i] : nullptr};
    if (layers_[i].is_moe && replay.defined()) moe.replay = replay.select(1, static_cast<int64_t>(moe_index));
    moe_index += layers_[i].is_moe ? 1 : 0;
    x = decoder_layer(layers_[i], x, cos, sin, chunk, context, static_cast<int64_t>(i), form, moe);
  }
  if (context) context->commit();
  return rms_norm(x, like(norm_, x), config_.rms_norm_eps);
}

at::Tensor DeepseekModel::forward(const at::Tensor& ids, const at::Tensor& positions, LatentContext* context,
                                  AttentionForm form, std::vector<at::Tensor>* expert_load) const {
  return head(lm_head(), hidden_states(ids, positions, context, form, expert_load));
}

at::Tensor DeepseekModel::hidden(const at::Tensor& ids, const Feed& feed) const {
  return run_layers(ids, feed, AttentionForm::kAuto);
}

at::Tensor DeepseekModel::logits(const at::Tensor& ids, const Feed& feed) const {
  return head(lm_head(), hidden(ids, feed));
}

at::Tensor DeepseekModel::logits_at(const at::Tensor& h, const at::Tensor& rows) const {
  return head(lm_head(), h.reshape({-1, h.size(-1)}).index_select(0, rows.to(h.device())));
}

std::vector<at::Tensor> DeepseekModel::mtp_logits(const at::Tensor& ids_in) const {
  if (mtp_.empty()) throw InputError("mtp_logits: the model was built without MTP modules");
  return mtp_logits(ids_in, hidden_states(ids_in.to(options_.device)));
}

std::vector<at::Tensor> DeepseekModel::mtp_logits(const at::Tensor& ids_in, const at::Tensor& h) const {
  if (mtp_.empty()) throw InputError("mtp_logits: the model was built without MTP modules");
  const at::Tensor ids = ids_in.to(options_.device);
  if (h.dim() != 3 || h.size(0) != ids.size(0) || h.size(1) != ids.size(1))
    throw InputError("mtp_logits: hidden states " + shape_str(h.sizes()) + " for ids " + shape_str(ids.sizes()));
  const int64_t t = ids.size(1), first_mtp_layer = config_.num_hidden_layers;
  const double eps = config_.rms_norm_eps;
  at::Tensor prev = h;  // [B, T, D]
  std::vector<at::Tensor> out;
  for (size_t k = 1; k <= mtp_.size(); ++k) {
    const int64_t n = t - static_cast<int64_t>(k);
    if (n <= 0) break;
    const MtpModule& m = mtp_[k - 1];
    at::Tensor e = rms_norm(embed(m.embed_tokens, ids.narrow(1, k, n)), like(m.enorm, prev), eps);  // t_{i+k}
    at::Tensor hp = rms_norm(prev.narrow(1, 0, n), like(m.hnorm, prev), eps);                       // h_i
    at::Tensor z = project(at::cat({e, hp}, -1), m.eh_proj);                                        // [B, n, D]
    LatentChunk chunk{at::arange(n, prev.options().dtype(at::kLong)).unsqueeze(0).expand({ids.size(0), n}), false};
    auto [cos, sin] = rope_cos_sin(config_, chunk.slots, options_.compute_dtype, inv_freq_);
    z = decoder_layer(m.block, z, cos, sin, chunk, nullptr, first_mtp_layer + static_cast<int64_t>(k) - 1,
                      AttentionForm::kNaive, {});
    out.push_back(head(m.shared_head_head, rms_norm(z, like(m.shared_head_norm, z), eps)));
    prev = z;
  }
  return out;
}

at::Tensor DeepseekModel::mtp_hidden(const at::Tensor& h_in, const at::Tensor& next_ids, const Feed& feed) const {
  if (mtp_.empty()) throw InputError("mtp_hidden: the model was built without MTP modules");
  const at::Tensor h = h_in.to(options_.device), ids = next_ids.to(options_.device);
  if (h.dim() != 3 || ids.dim() != 2 || ids.scalar_type() != at::kLong || h.size(0) != ids.size(0) ||
      h.size(1) != ids.size(1) || h.size(2) != config_.hidden_size)
    throw InputError("mtp_hidden: expected hidden [B, T, " + std::to_string(config_.hidden_size) +
                     "] and int64 ids [B, T], got " + shape_str(h.sizes()) + " and " + shape_str(ids.sizes()) + " " +
                     c10::toString(ids.scalar_type()));
  const int64_t b = ids.size(0), t = ids.size(1);
  if (t == 0) throw InputError("mtp_hidden: empty chunk");
  if (b && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config_.vocab_size))
    throw InputError("mtp_hidden: token id outside [0, " + std::to_string(config_.vocab_size) + ")");
  LatentContext* context = feed.context;
  const int64_t layer = config_.num_hidden_layers;  // the module's keys in the context
  if (context && context->num_layers() != layer + 1)
    throw InputError("mtp_hidden: latent cache has " + std::to_string(context->num_layers()) + " layers, need " +
                     std::to_string(layer + 1) + " (the model's and the MTP module's)");
  const MtpModule& m = mtp_[0];
  const double eps = config_.rms_norm_eps;
  LatentChunk chunk = begin_chunk(context, {}, b, t, options_.device);
  at::Tensor pos = feed.positions.defined() ? feed.positions.to(options_.device) : chunk.slots;
  if (pos.dim() == 1) pos = pos.unsqueeze(0);
  auto [cos, sin] = rope_cos_sin(config_, pos.expand({b, t}), options_.compute_dtype, inv_freq_);
  at::Tensor x = h.to(options_.compute_dtype);
  at::Tensor e = rms_norm(embed(m.embed_tokens, ids), like(m.enorm, x), eps);  // t_{i+1}
  at::Tensor hp = rms_norm(x, like(m.hnorm, x), eps);                          // h_i
  at::Tensor z = project(at::cat({e, hp}, -1), m.eh_proj);                     // [B, T, D]
  z = decoder_layer(m.block, z, cos, sin, chunk, context, layer, AttentionForm::kAuto, {});
  if (context) context->commit();
  return z;
}

at::Tensor DeepseekModel::mtp_logits_at(const at::Tensor& hm, const at::Tensor& rows) const {
  if (mtp_.empty()) throw InputError("mtp_logits_at: the model was built without MTP modules");
  const MtpModule& m = mtp_[0];
  const at::Tensor z = hm.reshape({-1, hm.size(-1)}).index_select(0, rows.to(hm.device()));
  return head(m.shared_head_head, rms_norm(z, like(m.shared_head_norm, z), config_.rms_norm_eps));
}

void DeepseekModel::update_correction_biases(const std::vector<at::Tensor>& expert_load, double gamma) {
  if (expert_load.size() != layers_.size())
    throw InputError("update_correction_biases: " + std::to_string(expert_load.size()) + " loads for " +
                     std::to_string(layers_.size()) + " layers");
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < layers_.size(); ++i) {
    at::Tensor& bias = layers_[i].moe.e_score_correction_bias;
    if (bias.defined() && expert_load[i].defined()) bias = balanced_bias(bias, expert_load[i], gamma);
  }
}

LatentCache DeepseekModel::make_cache(int64_t batch, int64_t capacity) const {
  return LatentCache::for_model(config_, batch, capacity, options_.compute_dtype, options_.device);
}

}  // namespace grpo
