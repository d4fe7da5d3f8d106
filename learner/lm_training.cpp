#include "learner/lm_training.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/json_parse.h"
#include "model/device.h"
#include "model/model_options.h"

namespace grpo {
namespace fs = std::filesystem;
namespace {

std::string read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(what + ": cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `auto` only for the compute dtype: a saved checkpoint's dtype does not follow the CPU.
void check_dtype(const std::string& name, const std::string& where, bool allow_auto) {
  if (name == "fp32" || name == "bf16" || (allow_auto && name == "auto")) return;
  throw InputError(where + (allow_auto ? ": expected fp32, bf16 or auto, got \"" : ": expected fp32 or bf16, got \"") +
                   name + "\"");
}

std::vector<at::Tensor> tensors_of(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  std::vector<at::Tensor> out;
  out.reserve(named.size());
  for (const auto& p : named) out.push_back(p.second);
  return out;
}

}  // namespace

nlohmann::json read_json_object(const std::string& path, const std::string& what) {
  nlohmann::json j;
  const std::string text = read_text(path, what);
  check_json_depth(text, what + ": '" + path + "'");
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(what + ": '" + path + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw InputError(what + ": '" + path + "' must hold a JSON object");
  return j;
}

const std::vector<std::string> kLmTrainingKeys = {"seq_len", "batch_size", "log_every", "optim",   "threads", "seed",
                                                  "dtype",   "save_dtype", "device",    "out_dir", "log_dir"};

LmTrainingOptions LmTrainingOptions::from_config(const Config& s) {
  LmTrainingOptions o;
  auto at_least = [&](const char* key, int64_t fallback, int64_t least) {
    const int64_t v = s.get<int64_t>(key, fallback);
    if (v < least) throw InputError(s.where(key) + ": expected an integer >= " + std::to_string(least));
    return v;
  };
  o.seq_len = at_least("seq_len", o.seq_len, 2);
  o.batch_size = at_least("batch_size", o.batch_size, 1);
  o.log_every = at_least("log_every", o.log_every, 1);
  o.threads = static_cast<int>(at_least("threads", o.threads, 0));
  o.seed = static_cast<uint64_t>(at_least("seed", 0, 0));

  const Config opt = s.sub("optim");
  opt.require_known(
      {"lr", "warmup_steps", "decay", "min_lr_ratio", "weight_decay", "beta1", "beta2", "eps", "grad_clip"});
  o.lr.peak = opt.get<double>("lr", 1e-3);
  o.lr.warmup_steps = opt.get<int64_t>("warmup_steps", 0);
  try {
    o.lr.decay = parse_lr_decay(opt.get<std::string>("decay", "cosine"));
  } catch (const InputError& e) {
    throw InputError(opt.where("decay") + ": " + e.what());
  }
  o.lr.min_ratio = opt.get<double>("min_lr_ratio", 0.1);
  o.adamw.weight_decay = opt.get<double>("weight_decay", 0.0);
  o.adamw.beta1 = opt.get<double>("beta1", o.adamw.beta1);
  o.adamw.beta2 = opt.get<double>("beta2", o.adamw.beta2);
  o.adamw.eps = opt.get<double>("eps", o.adamw.eps);
  o.grad_clip = opt.get<double>("grad_clip", o.grad_clip);
  if (!(o.lr.peak > 0)) throw InputError(opt.where("lr") + ": expected a number > 0");
  if (o.lr.warmup_steps < 0) throw InputError(opt.where("warmup_steps") + ": expected an integer >= 0");
  if (o.lr.min_ratio < 0 || o.lr.min_ratio > 1) throw InputError(opt.where("min_lr_ratio") + ": expected [0, 1]");

  o.dtype = s.get<std::string>("dtype", o.dtype);
  check_dtype(o.dtype, s.where("dtype"), true);
  o.dtype = resolve_dtype(o.dtype);  // "auto": chosen by the CPU here
  const std::string device = s.get<std::string>("device", "auto");
  o.device = resolve_device(device, s.where("device")).device;
  o.device_auto = device == "auto";
  o.save_dtype = s.get<std::string>("save_dtype", o.save_dtype);
  check_dtype(o.save_dtype, s.where("save_dtype"), false);
  o.out_dir = s.get<std::string>("out_dir");
  o.log_dir = s.get<std::string>("log_dir", (fs::path(o.out_dir) / "logs").string());
  return o;
}

ModelOptions LmTrainingOptions::model_options() const {
  ModelOptions o;
  if (dtype == "bf16") o.compute_dtype = at::kBFloat16;
  o.device = device;
  return o;
}

DType LmTrainingOptions::save_dtype_value() const { return save_dtype == "bf16" ? DType::BF16 : DType::F32; }

nlohmann::json model_config_from(const Config& s, const std::string& key, std::string* source) {
  const YAML::Node node = s.node()[key];
  if (!node || node.IsNull()) throw InputError(s.where(key) + ": required (a config.json path or object)");
  if (node.IsMap()) {
    *source = s.where(key);
    return yaml_to_json(node);
  }
  const std::string path = s.get_path(key);
  *source = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  return read_json_object(*source, s.where(key));
}

at::Tensor token_nll(const at::Tensor& logits, const at::Tensor& targets) {
  return -logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

at::Tensor masked_mean(const at::Tensor& x, const at::Tensor& mask) { return (x * mask).sum() / mask.sum(); }

LmOptimizer::LmOptimizer(const std::vector<std::pair<std::string, at::Tensor>>& params, const LmTrainingOptions& o)
    : params_(tensors_of(params)), adamw_(params, o.adamw), lr_(o.lr), grad_clip_(o.grad_clip) {}

LmOptimizer::LmOptimizer(const std::vector<std::pair<std::string, at::Tensor>>& params, std::vector<ParamSlice> owned,
                         const LmTrainingOptions& o)
    : params_(tensors_of(params)), adamw_(std::move(owned), o.adamw), lr_(o.lr), grad_clip_(o.grad_clip) {}

LmOptimizer::Step LmOptimizer::step(const at::Tensor& loss, int64_t step, const std::string& who) {
  backward(loss);
  return update(loss.item<double>(), clip_grad_norm(params_, grad_clip_), step, who);
}

void LmOptimizer::backward(const at::Tensor& loss) {
  for (at::Tensor& p : params_)  // all of them: AdamW may own only slices of some
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  loss.backward();
}

LmOptimizer::Step LmOptimizer::update(double loss, double grad_norm, int64_t step, const std::string& who) {
  if (!std::isfinite(loss))
    throw std::runtime_error(who + ": the loss is not finite at step " + std::to_string(step) +
                             " (try a lower optim.lr or grad_clip)");
  Step s;
  s.loss = loss;
  s.grad_norm = grad_norm;
  s.lr = lr_at(lr_, step);
  adamw_.step(s.lr);
  return s;
}

LmRunLog::LmRunLog(const std::string& label, int64_t steps, const LmTrainingOptions& o, bool show_progress,
                   int64_t first_step, bool write_metrics)
    : steps(first_step),
      total_(steps),
      first_step_(first_step),
      log_every_(o.log_every),
      progress_(label, steps, show_progress, first_step),
      start_(Clock::now()),
      window_start_(start_) {
  if (write_metrics) metrics_.emplace(o.log_dir);
  if (write_metrics && !o.http_address.empty()) {
    http_ = std::make_unique<Monitor>(MonitorOptions{o.http_address, o.log_dir, label});
    http_->set_ready(true);  // the model is loaded and the data prepared: training starts
  }
}

void LmRunLog::record(int64_t step, const LmOptimizer::Step& s, int64_t step_tokens,
                      const std::map<std::string, double>& extra, bool log_now) {
  if (step == first_step_) first_loss = s.loss;
  final_loss = s.loss;
  tokens += step_tokens;
  window_tokens_ += step_tokens;
  steps = step + 1;
  char status[64];
  std::snprintf(status, sizeof status, "loss=%.4f", s.loss);
  progress_.advance(1, status);
  if (metrics_ && (log_now || (step + 1) % log_every_ == 0 || step + 1 == total_)) {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - window_start_).count();
    std::map<std::string, double> values = extra;
    values["loss"] = s.loss;
    values["lr"] = s.lr;
    values["grad_norm"] = s.grad_norm;
    values["throughput/tokens_per_s"] = secs > 0 ? window_tokens_ / secs : 0.0;
    metrics_->log(step + 1, values);
    if (http_) http_->log_step(step + 1, values);
    window_start_ = now;
    window_tokens_ = 0;
  }
}

void LmRunLog::finish() {
  seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  progress_.finish();
}

}  // namespace grpo
