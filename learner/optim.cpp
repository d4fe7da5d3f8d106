#include "learner/optim.h"

#include <ATen/core/grad_mode.h>
#include <cmath>

#include "common/error.h"
#include "kernels/adamw.h"

namespace grpo {

LrDecay parse_lr_decay(const std::string& name) {
  if (name == "constant") return LrDecay::kConstant;
  if (name == "linear") return LrDecay::kLinear;
  if (name == "cosine") return LrDecay::kCosine;
  throw InputError("lr decay '" + name + "': expected constant, linear or cosine");
}

double lr_at(const LrSchedule& s, int64_t step) {
  if (s.warmup_steps > 0 && step < s.warmup_steps) return s.peak * double(step + 1) / double(s.warmup_steps);
  if (s.decay == LrDecay::kConstant || s.total_steps <= s.warmup_steps) return s.peak;
  const double span = double(s.total_steps - s.warmup_steps);
  const double progress = std::min(1.0, double(step - s.warmup_steps) / span);
  const double floor = s.min_ratio * s.peak;
  const double shape = s.decay == LrDecay::kLinear ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return floor + (s.peak - floor) * shape;
}

double grad_sq_norm(const std::vector<at::Tensor>& params) {
  double sq = 0;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.scalar_type() == at::kFloat && g.is_contiguous() && g.device().is_cpu())
      sq += kernels::sum_squares(g.data_ptr<float>(), g.numel());  // fp64 sum, no fp64 copy
    else
      sq += g.to(at::kDouble).pow(2).sum().item<double>();
  }
  return sq;
}

void scale_grads_to(const std::vector<at::Tensor>& params, double norm, double max_norm) {
  if (!(max_norm > 0 && std::isfinite(norm) && norm > max_norm)) return;
  const double scale = max_norm / (norm + 1e-6);
  for (const auto& p : params)
    if (p.grad().defined()) p.mutable_grad().mul_(scale);
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  const double norm = std::sqrt(grad_sq_norm(params));
  scale_grads_to(params, norm, max_norm);
  return norm;
}

std::string ParamSlice::key() const {
  return whole() ? name : name + "[" + std::to_string(begin) + ":" + std::to_string(begin + size) + "]";
}

at::Tensor ParamSlice::of(const at::Tensor& t) const { return whole() ? t : t.view({-1}).narrow(0, begin, size); }

std::vector<ParamSlice> whole_slices(const std::vector<std::pair<std::string, at::Tensor>>& params) {
  std::vector<ParamSlice> out;
  out.reserve(params.size());
  for (const auto& [name, p] : params) out.push_back({name, p, 0, p.numel()});
  return out;
}

AdamW::AdamW(const std::vector<std::pair<std::string, at::Tensor>>& params, AdamWOptions options)
    : AdamW(whole_slices(params), options) {}

AdamW::AdamW(std::vector<ParamSlice> slices, AdamWOptions options) : slices_(std::move(slices)), options_(options) {
  for (const ParamSlice& s : slices_) {
    const at::Tensor& p = s.param;
    if (!at::isFloatingType(p.scalar_type()) || p.scalar_type() == at::kBFloat16 || p.scalar_type() == at::kHalf)
      throw InputError("AdamW: parameter " + s.name + " must be float32 or float64 (master weights), got " +
                       std::string(c10::toString(p.scalar_type())));
    if (s.begin < 0 || s.size < 0 || s.begin + s.size > p.numel() || (!s.whole() && !p.is_contiguous()))
      throw std::logic_error("AdamW: slice " + s.key() + " is not a range of contiguous " + s.name);
    const at::Tensor like = s.of(p.detach());
    exp_avg_.push_back(at::zeros_like(like));
    exp_avg_sq_.push_back(at::zeros_like(like));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double bc1 = 1.0 - std::pow(options_.beta1, double(steps_));
  const double bc2 = 1.0 - std::pow(options_.beta2, double(steps_));
  for (size_t i = 0; i < slices_.size(); ++i) {
    const ParamSlice& s = slices_[i];
    if (!s.param.grad().defined()) continue;
    at::Tensor p = s.of(s.param.detach());  // in place: a view of the parameter
    const at::Tensor g = s.of(s.param.grad().contiguous()).to(p.scalar_type());
    if (p.scalar_type() == at::kFloat && p.device().is_cpu() && p.is_contiguous() && exp_avg_[i].is_contiguous() &&
        exp_avg_sq_[i].is_contiguous()) {  // fp32 master weights: one fused pass (kernels/adamw.h)
      kernels::adamw_update(p.data_ptr<float>(), g.data_ptr<float>(), exp_avg_[i].data_ptr<float>(),
                            exp_avg_sq_[i].data_ptr<float>(), p.numel(),
                            {lr, options_.beta1, options_.beta2, options_.eps, options_.weight_decay, steps_});
      continue;
    }
    if (options_.weight_decay != 0) p.mul_(1.0 - lr * options_.weight_decay);
    exp_avg_[i].mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    const at::Tensor denom = (exp_avg_sq_[i] / bc2).sqrt_().add_(options_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bc1);
  }
}

void AdamW::zero_grad() {
  for (ParamSlice& s : slices_)
    if (s.param.grad().defined()) s.param.mutable_grad() = at::Tensor();
}

std::map<std::string, at::Tensor> AdamW::state() const {
  std::map<std::string, at::Tensor> out;
  for (size_t i = 0; i < slices_.size(); ++i) {
    out[slices_[i].key() + ".exp_avg"] = exp_avg_[i];
    out[slices_[i].key() + ".exp_avg_sq"] = exp_avg_sq_[i];
  }
  out["step"] = at::full({1}, steps_, at::kLong);
  return out;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  auto find = [&](const std::string& key, const at::Tensor& like) -> const at::Tensor& {
    auto it = state.find(key);
    if (it == state.end()) throw InputError(source + ": optimizer state has no entry '" + key + "'");
    if (it->second.sizes() != like.sizes())
      throw InputError(source + ": optimizer state '" + key + "' has shape " + c10::str(it->second.sizes()) +
                       ", expected " + c10::str(like.sizes()));
    return it->second;
  };
  const at::Tensor& step = find("step", at::empty({1}));
  std::vector<at::Tensor> m, v;
  for (size_t i = 0; i < slices_.size(); ++i) {
    const std::string key = slices_[i].key();
    m.push_back(find(key + ".exp_avg", exp_avg_[i]).to(exp_avg_[i].device(), exp_avg_[i].scalar_type(), false, true));
    v.push_back(find(key + ".exp_avg_sq", exp_avg_sq_[i])
                    .to(exp_avg_sq_[i].device(), exp_avg_sq_[i].scalar_type(), false, true));
  }
  exp_avg_ = std::move(m);
  exp_avg_sq_ = std::move(v);
  steps_ = step.to(at::kLong).item<int64_t>();
}

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (size_t i = 0; i < slices_.size(); ++i) bytes += exp_avg_[i].nbytes() + exp_avg_sq_[i].nbytes();
  return bytes;
}

}  // namespace grpo
