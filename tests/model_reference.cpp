#include "model_reference.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace grpo::testing {
namespace {

using Vec = std::vector<double>;

double mscale(double s, double m) { return s <= 1.0 ? 1.0 : 0.1 * m * std::log(s) + 1.0; }

class Weights {
 public:
  explicit Weights(const std::map<std::string, at::Tensor>& w) : w_(w) {}
  at::Tensor operator()(const std::string& name) const { return w_.at(name).to(at::kDouble); }
  bool has(const std::string& name) const { return w_.count(name) > 0; }

 private:
  const std::map<std::string, at::Tensor>& w_;
};

Vec to_vec(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous();
  return Vec(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
at::Tensor to_tensor(const Vec& v) { return at::tensor(at::ArrayRef<double>(v), at::kDouble); }

at::Tensor rms(const at::Tensor& x, const at::Tensor& g, double eps) {
  return x / std::sqrt((x * x).mean().item<double>() + eps) * g;
}

at::Tensor swish(const at::Tensor& x) { return x / (1.0 + (-x).exp()); }

at::Tensor swiglu(const Weights& W, const std::string& p, const at::Tensor& x) {
  return at::mv(W(p + "down_proj.weight"),
                swish(at::mv(W(p + "gate_proj.weight"), x)) * at::mv(W(p + "up_proj.weight"), x));
}

// Rotates the rope part of one head in place: pair i is (2i, 2i+1) or (i, i + d/2).
Vec rotate(const ModelConfig& c, const Vec& x, int64_t pos) {
  const size_t d = x.size();
  Vec inv = reference_inv_freq(c), out = x;
  const double f = reference_attention_factor(c);
  for (size_t i = 0; i < d / 2; ++i) {
    size_t a = c.rope_interleave ? 2 * i : i, b = c.rope_interleave ? 2 * i + 1 : i + d / 2;
    double ang = static_cast<double>(pos) * inv[i], cs = std::cos(ang) * f, sn = std::sin(ang) * f;
    out[a] = x[a] * cs - x[b] * sn;
    out[b] = x[b] * cs + x[a] * sn;
  }
  return out;
}

double dot(const Vec& a, const Vec& b) { return std::inner_product(a.begin(), a.end(), b.begin(), 0.0); }

}  // namespace

std::vector<double> reference_inv_freq(const ModelConfig& c) {
  const int64_t d = c.qk_rope_head_dim;
  const double base = c.rope.theta;
  Vec inv(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) inv[i] = std::pow(base, -2.0 * i / d);
  if (c.rope.type != "yarn") return inv;
  // Dim index at which the wavelength gives `rot` rotations over the original context.
  auto dim_for = [&](double rot) {
    double wavelength = c.rope.original_max_position_embeddings / rot;  // positions per turn
    return d * std::log(wavelength / (2 * M_PI)) / (2 * std::log(base));
  };
  double lo = std::max(0.0, std::floor(dim_for(c.rope.beta_fast)));
  double hi = std::min(static_cast<double>(d - 1), std::ceil(dim_for(c.rope.beta_slow)));
  if (hi == lo) hi += 0.001;
  for (int64_t i = 0; i < d / 2; ++i) {
    double t = std::min(1.0, std::max(0.0, (i - lo) / (hi - lo)));  // 0: keep, 1: divide by factor
    inv[i] = inv[i] * (1 - t) + inv[i] / c.rope.factor * t;
  }
  return inv;
}

double reference_attention_factor(const ModelConfig& c) {
  if (c.rope.type != "yarn") return 1.0;
  if (c.rope.attention_factor) return *c.rope.attention_factor;
  if (c.rope.mscale != 0 && c.rope.mscale_all_dim != 0)
    return mscale(c.rope.factor, c.rope.mscale) / mscale(c.rope.factor, c.rope.mscale_all_dim);
  return mscale(c.rope.factor, 1.0);
}

void reference_route(const ModelConfig& c, const Vec& logits, const Vec& bias, std::vector<int64_t>* experts,
                     Vec* weights) {
  const int64_t e = static_cast<int64_t>(logits.size());
  Vec score(e);
  if (c.scoring_func == ScoringFunc::kSoftmax) {
    double mx = *std::max_element(logits.begin(), logits.end()), z = 0;
    for (int64_t i = 0; i < e; ++i) z += std::exp(logits[i] - mx);
    for (int64_t i = 0; i < e; ++i) score[i] = std::exp(logits[i] - mx) / z;
  } else {
    for (int64_t i = 0; i < e; ++i) score[i] = 1.0 / (1.0 + std::exp(-logits[i]));
  }
  Vec choice = score;
  if (c.topk_method == TopkMethod::kNoauxTc && !bias.empty())
    for (int64_t i = 0; i < e; ++i) choice[i] += bias[i];
  std::vector<bool> eligible(e, true);
  if (c.topk_method != TopkMethod::kGreedy && c.n_group > 1) {
    const int64_t per = e / c.n_group;
    std::vector<std::pair<double, int64_t>> groups;
    for (int64_t g = 0; g < c.n_group; ++g) {
      Vec members(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(members.rbegin(), members.rend());
      double s = c.topk_method == TopkMethod::kNoauxTc ? members[0] + members[1] : members[0];
      groups.emplace_back(s, g);
    }
    std::sort(groups.rbegin(), groups.rend());
    std::fill(eligible.begin(), eligible.end(), false);
    for (int64_t k = 0; k < c.topk_group; ++k)
      for (int64_t i = 0; i < per; ++i) eligible[groups[k].second * per + i] = true;
  }
  std::vector<std::pair<double, int64_t>> ranked;
  for (int64_t i = 0; i < e; ++i)
    if (eligible[i]) ranked.emplace_back(choice[i], i);
  std::sort(ranked.rbegin(), ranked.rend());
  experts->clear();
  weights->clear();
  for (int64_t k = 0; k < c.num_experts_per_tok; ++k) {
    experts->push_back(ranked[k].second);
    weights->push_back(score[ranked[k].second]);
  }
  double sum = std::accumulate(weights->begin(), weights->end(), 0.0);
  bool v3 = c.family == ModelFamily::kDeepseekV3;
  bool norm = c.norm_topk_prob && (v3 || c.num_experts_per_tok > 1);
  for (double& w : *weights) {
    if (norm) w /= sum + 1e-20;
    if (v3 || !norm) w *= c.routed_scaling_factor;
  }
}

at::Tensor reference_logits(const ModelConfig& c, const std::map<std::string, at::Tensor>& weights,
                            const std::vector<int64_t>& ids) {
  Weights W(weights);
  const int64_t T = static_cast<int64_t>(ids.size()), H = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, R = c.kv_lora_rank;
  const int64_t qk = nope + rope;
  const double eps = c.rms_norm_eps;
  double scale = 1.0 / std::sqrt(static_cast<double>(qk));
  if (c.rope.type == "yarn" && c.rope.mscale_all_dim != 0)
    scale *= std::pow(mscale(c.rope.factor, c.rope.mscale_all_dim), 2);

  at::Tensor embed = W("model.embed_tokens.weight");
  std::vector<at::Tensor> x;  // per token [D]
  for (int64_t t = 0; t < T; ++t) x.push_back(embed[ids[t]].clone());

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::string a = p + "self_attn.";
    // Per token, per head: query parts, key parts and values.
    std::vector<std::vector<Vec>> qn(T), qr(T), kn(T), val(T);
    std::vector<Vec> kr(T);
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor hn = rms(x[t], W(p + "input_layernorm.weight"), eps);
      at::Tensor q = c.q_lora_rank ? at::mv(W(a + "q_b_proj.weight"), rms(at::mv(W(a + "q_a_proj.weight"), hn),
                                                                          W(a + "q_a_layernorm.weight"), eps))
                                   : at::mv(W(a + "q_proj.weight"), hn);
      Vec kv = to_vec(at::mv(W(a + "kv_a_proj_with_mqa.weight"), hn));
      at::Tensor latent = rms(to_tensor(Vec(kv.begin(), kv.begin() + R)), W(a + "kv_a_layernorm.weight"), eps);
      kr[t] = rotate(c, Vec(kv.begin() + R, kv.end()), t);
      Vec up = to_vec(at::mv(W(a + "kv_b_proj.weight"), latent));
      Vec qv = to_vec(q);
      for (int64_t h = 0; h < H; ++h) {
        qn[t].emplace_back(qv.begin() + h * qk, qv.begin() + h * qk + nope);
        qr[t].push_back(rotate(c, Vec(qv.begin() + h * qk + nope, qv.begin() + (h + 1) * qk), t));
        kn[t].emplace_back(up.begin() + h * (nope + vd), up.begin() + h * (nope + vd) + nope);
        val[t].emplace_back(up.begin() + h * (nope + vd) + nope, up.begin() + (h + 1) * (nope + vd));
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      Vec heads;
      for (int64_t h = 0; h < H; ++h) {
        Vec s(t + 1);
        for (int64_t j = 0; j <= t; ++j) s[j] = (dot(qn[t][h], kn[j][h]) + dot(qr[t][h], kr[j])) * scale;
        double mx = *std::max_element(s.begin(), s.end()), z = 0;
        for (double& v : s) z += (v = std::exp(v - mx));
        Vec o(vd, 0.0);
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < vd; ++i) o[i] += s[j] / z * val[j][h][i];
        heads.insert(heads.end(), o.begin(), o.end());
      }
      x[t] = x[t] + at::mv(W(a + "o_proj.weight"), to_tensor(heads));
    }
    const std::string m = p + "mlp.";
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor y = rms(x[t], W(p + "post_attention_layernorm.weight"), eps);
      if (!c.is_moe_layer(l)) {
        x[t] = x[t] + swiglu(W, m, y);
        continue;
      }
      Vec logits = to_vec(at::mv(W(m + "gate.weight"), y));
      Vec bias = W.has(m + "gate.e_score_correction_bias") ? to_vec(W(m + "gate.e_score_correction_bias")) : Vec{};
      std::vector<int64_t> chosen;
      Vec wts;
      reference_route(c, logits, bias, &chosen, &wts);
      at::Tensor out = at::zeros_like(y);
      for (size_t k = 0; k < chosen.size(); ++k)
        out = out + wts[k] * swiglu(W, m + "experts." + std::to_string(chosen[k]) + ".", y);
      if (c.n_shared_experts > 0) out = out + swiglu(W, m + "shared_experts.", y);
      x[t] = x[t] + out;
    }
  }
  at::Tensor head = c.tie_word_embeddings ? embed : W("lm_head.weight");
  std::vector<at::Tensor> rows;
  for (int64_t t = 0; t < T; ++t) rows.push_back(at::mv(head, rms(x[t], W("model.norm.weight"), eps)));
  return at::stack(rows);
}

}  // namespace grpo::testing
