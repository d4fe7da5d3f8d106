// What the language-model trainers share (`grpo pretrain`, learner/pretrain.h; `grpo sft`,
// learner/sft.h): the common keys of their config sections, the optimizer step, the masked
// token losses and writing a checkpoint's tokenizer files.
//
// Common keys (every one optional):
//   seq_len: 128   batch_size: 32   log_every: 10   threads: 0 (all cores)   seed: 0
//   optim: {lr: 1e-3, warmup_steps: 0, decay: cosine, min_lr_ratio: 0.1, weight_decay: 0.0,
//           beta1: 0.9, beta2: 0.999, eps: 1e-8, grad_clip: 1.0}
//   dtype: fp32 | bf16 (bf16 compute, fp32 master weights) | auto (model_options.h)   save_dtype: fp32 | bf16
//   out_dir: the checkpoint directory (required)   log_dir: metrics (default <out_dir>/logs)
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/progress.h"
#include "http/monitor.h"
#include "learner/optim.h"
#include "metrics/metrics.h"
#include "model/deepseek.h"  // ModelOptions
#include "model/dtype.h"

namespace grpo {

struct LmTrainingOptions {
  int64_t seq_len = 128, batch_size = 32, log_every = 10;
  LrSchedule lr;  // total_steps is set by the trainer once it knows its step count
  AdamWOptions adamw;
  double grad_clip = 1.0;
  int threads = 0;
  uint64_t seed = 0;
  std::string dtype = "fp32", save_dtype = "fp32";
  // `device`: cpu | cuda | cuda:N | auto (default; model/device.h), resolved on reading.
  at::Device device = at::kCPU;
  bool device_auto = true;
  std::string out_dir, log_dir;
  std::string http_address;  // the live view's (http/monitor.h); "" = off. Not a section key: the
                             // commands set it from http.address / --http (http/address.h)

  // The keys above, from a trainer's section; InputError naming the key. Does not check for
  // unknown keys (the caller lists its own with kLmTrainingKeys).
  static LmTrainingOptions from_config(const Config& section);
  ModelOptions model_options() const;  // fp32 parameters, compute in `dtype`, on `device`
  DType save_dtype_value() const;
};

// The keys LmTrainingOptions reads, for Config::require_known.
extern const std::vector<std::string> kLmTrainingKeys;

// A JSON file holding an object; InputError naming `what` and the path when it cannot be read, is
// not JSON or is not an object.
nlohmann::json read_json_object(const std::string& path, const std::string& what);

// The `key` of a trainer section naming a model's HF config: a config.json object inline, or the
// path of a config.json or of a directory holding one. `source` gets what errors should name.
// InputError for a missing key or an unreadable / non-object JSON file.
nlohmann::json model_config_from(const Config& section, const std::string& key, std::string* source);

// -log softmax(logits)[targets]: logits [B, T, V], targets [B, T] int64 -> [B, T].
at::Tensor token_nll(const at::Tensor& logits, const at::Tensor& targets);
// Σ x·mask / Σ mask (x, mask: same shape; mask 0/1 float). The denominator must be > 0.
at::Tensor masked_mean(const at::Tensor& x, const at::Tensor& mask);

// AdamW over named trainable parameters with the schedule and gradient clipping of the options.
// Not thread-safe: one owner (the training loop). Aliases the parameters (updated in place); owns its AdamW state.
class LmOptimizer {
 public:
  LmOptimizer(const std::vector<std::pair<std::string, at::Tensor>>& params, const LmTrainingOptions& options);
  // AdamW over `owned` only (ZeRO-1: this rank's slices, learner/zero1.h); `params` are all the
  // trainable tensors, whose gradients backward() clears and step() clips.
  LmOptimizer(const std::vector<std::pair<std::string, at::Tensor>>& params, std::vector<ParamSlice> owned,
              const LmTrainingOptions& options);

  struct Step {
    double loss = 0, grad_norm = 0, lr = 0;
  };
  // zero_grad, loss.backward(), clip, AdamW update at lr_at(schedule, step). Throws
  // std::runtime_error naming `who` and the step when the loss is not finite.
  Step step(const at::Tensor& loss, int64_t step, const std::string& who);

  // step() in two halves, for a data-parallel run that combines the gradients between them and
  // clips by their global norm (learner/pretrain.cpp): backward() is zero_grad and
  // loss.backward(); update() takes the run's loss and its (clipped) gradient norm, throws as
  // step() does when the loss is not finite, and applies the AdamW update.
  void backward(const at::Tensor& loss);
  Step update(double loss, double grad_norm, int64_t step, const std::string& who);

  // AdamW's moments and step count, for a checkpoint to resume from (AdamW::state / load_state).
  std::map<std::string, at::Tensor> state() const { return adamw_.state(); }
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
    adamw_.load_state(state, source);
  }
  int64_t state_bytes() const { return adamw_.state_bytes(); }

 private:
  std::vector<at::Tensor> params_;
  AdamW adamw_;
  LrSchedule lr_;
  double grad_clip_;
};

// The bookkeeping of a training run: a progress line with ETA ("loss=..."), a metrics line every
// log_every steps, at the last one and where asked (loss, lr, grad_norm, throughput/tokens_per_s
// over the window, plus `extra`), and the run's totals. A resumed run starts at `first_step` (the
// progress line counts on from it; the steps before it count neither in its rate nor in the
// totals); `write_metrics` false writes no metrics (the ranks of a distributed run other than
// rank 0). With options.http_address (and write_metrics) it also serves the live view, its
// /metrics fed with each metrics line. Not thread-safe: one owner (the training loop). Owns its
// metrics writer, progress line and live view.
class LmRunLog {
 public:
  LmRunLog(const std::string& label, int64_t steps, const LmTrainingOptions& options, bool show_progress,
           int64_t first_step = 0, bool write_metrics = true);

  // After optimizer step `step` (0-based) trained on `tokens` target tokens; `log_now`: write this
  // step's metrics line even between log_every steps (`extra` holds figures that must not be lost).
  void record(int64_t step, const LmOptimizer::Step& s, int64_t tokens, const std::map<std::string, double>& extra = {},
              bool log_now = false);
  void finish();

  int64_t steps = 0, tokens = 0;
  double first_loss = 0, final_loss = 0;
  double seconds = 0;  // from construction to finish()

 private:
  using Clock = std::chrono::steady_clock;
  int64_t total_, first_step_, log_every_;
  std::optional<MetricsWriter> metrics_;
  std::unique_ptr<Monitor> http_;
  Progress progress_;
  Clock::time_point start_, window_start_;
  int64_t window_tokens_ = 0;
};

}  // namespace grpo
