// The optimizer pieces every training loop here shares (GRPO trainer, pretraining, SFT): AdamW
// with decoupled weight decay (Loshchilov & Hutter; the same update as torch.optim.AdamW),
// global grad-norm clipping, and the learning-rate schedule (linear warm-up, then constant,
// linear or cosine decay). Optimizer state is kept per parameter *name*, so it can be saved
// beside a checkpoint and restored for resume.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

namespace grpo {

// ---- learning-rate schedule --------------------------------------------------------------

enum class LrDecay { kConstant, kLinear, kCosine };
LrDecay parse_lr_decay(const std::string& name);  // "constant", "linear", "cosine"; InputError otherwise

struct LrSchedule {
  double peak = 1e-6;        // the learning rate after warm-up
  int64_t warmup_steps = 0;  // lr rises linearly from peak/warmup_steps to peak over these steps
  int64_t total_steps = 0;   // decay reaches min_ratio * peak at this step (0: no decay)
  LrDecay decay = LrDecay::kConstant;
  double min_ratio = 0.0;  // floor of the decay, as a fraction of peak
};

// The learning rate for optimizer step `step` (0-based): pure function.
double lr_at(const LrSchedule& s, int64_t step);

// ---- gradient clipping -------------------------------------------------------------------

// L2 norm of all gradients together (undefined grads count as zero), computed in fp64 (fp32
// gradients without an fp64 copy: kernels::sum_squares). When
// max_norm > 0 and the norm exceeds it, every gradient is scaled by max_norm / (norm + 1e-6).
// Returns the norm before clipping (non-finite if any gradient is).
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);
// Its two halves, for norms summed over ranks (learner/expert_parallel.h): the sum of squared
// gradient entries (fp64), and the scaling by max_norm / (norm + 1e-6) when the (finite) norm
// exceeds max_norm > 0.
double grad_sq_norm(const std::vector<at::Tensor>& params);
void scale_grads_to(const std::vector<at::Tensor>& params, double norm, double max_norm);

// ---- AdamW -------------------------------------------------------------------------------

// What AdamW updates and keeps moments for: the contiguous range [begin, begin + size) of a
// parameter's flattened elements. A whole parameter is [0, numel); a part is how ZeRO-1 gives a
// rank its share of the replicated parameters (learner/zero1.h).
// Thread-safety: a plain value, no locking (concurrent reads only); `param` aliases the model's parameter.
struct ParamSlice {
  ParamSlice(std::string name, at::Tensor param, int64_t begin, int64_t size)
      : name(std::move(name)), param(std::move(param)), begin(begin), size(size) {}

  std::string name;
  at::Tensor param;  // a contiguous leaf tensor
  int64_t begin = 0, size = 0;

  bool whole() const { return begin == 0 && size == param.numel(); }
  // The name of its optimizer state: `name` when whole, else "name[begin:end]".
  std::string key() const;
  // The slice of t (shaped like param): t itself when whole, else a [size] view of it.
  at::Tensor of(const at::Tensor& t) const;
};
std::vector<ParamSlice> whole_slices(const std::vector<std::pair<std::string, at::Tensor>>& params);

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: p -= lr * weight_decay * p
};

// Not thread-safe: one owner (the training loop). Aliases the parameters (updated in place); owns its moments.
class AdamW {
 public:
  // `params`: name -> parameter (a leaf tensor with requires_grad, float32/64). The optimizer
  // keeps the tensors (they alias the model's) and updates them in place.
  AdamW(const std::vector<std::pair<std::string, at::Tensor>>& params, AdamWOptions options);
  // Over slices of parameters: moments only for the slices, updates only them (in place).
  AdamW(std::vector<ParamSlice> slices, AdamWOptions options);

  // One update with learning rate `lr` from the current .grad() of every parameter (a parameter
  // without a gradient is skipped and its moments stay). Does not zero the gradients. fp32
  // parameters take one fused pass each (kernels/adamw.h, its fp32 order); fp64 ones LibTorch's ops.
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return steps_; }

  // Moments and step count as tensors ("<key>.exp_avg", "<key>.exp_avg_sq", "step"; key: see
  // ParamSlice::key), for saving beside a checkpoint; load_state takes the same map back and
  // throws InputError naming the entry on a missing name or wrong shape (nothing changed then).
  std::map<std::string, at::Tensor> state() const;
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source);
  // Bytes of the moments (exp_avg and exp_avg_sq of every slice).
  int64_t state_bytes() const;

 private:
  std::vector<ParamSlice> slices_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

}  // namespace grpo
