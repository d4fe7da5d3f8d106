// How a model is held and run, apart from its architecture (model_config.h): dtypes, FP8, MTP
// modules and the expert-parallel slice. A plain value; thread-safe to copy.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace grpo {

struct ModelOptions {
  at::ScalarType compute_dtype = at::kFloat;  // kFloat, kBFloat16 or kDouble
  at::ScalarType param_dtype = at::kFloat;    // storage of the parameters
  bool mtp = false;                           // build the num_nextn_predict_layers MTP modules
  bool fp8 = false;                           // linear weights as FP8 blocks (inference only)
  // With fp8: W8A8 — the activations entering each FP8 linear are quantised too, one e4m3 scale
  // per 1×128 tile (Linear::quantize_activations); off: weight-only FP8.
  bool fp8_activations = false;
  // Expert parallelism: the model holds only the routed experts [expert_rank·E/expert_ranks,
  // (expert_rank+1)·E/expert_ranks) of every MoE layer (E divisible by expert_ranks) and runs them
  // through the runner given to set_routed_experts (learner/expert_parallel.h).
  int64_t expert_rank = 0, expert_ranks = 1;
  // Where the parameters, the caches and the activations live (model/device.h). FP8 weights are
  // CPU-only for now.
  at::Device device = at::kCPU;

  // Compute and parameters in one dtype named as the CLI spells it: "fp32" (or "float32"),
  // "bf16" (or "bfloat16"), "fp8" (FP8 linear weights, everything else and the compute bf16), or
  // "auto" (resolve_dtype). Throws InputError for anything else.
  static ModelOptions for_dtype(const std::string& name);
};

// What `--dtype auto` (and `dtype: auto` in configs) means on this CPU: "bf16" where it has
// native bf16 dot products (AVX512-BF16 or AMX, kernels/cpu_features.h), so bf16 matrix products
// run at least as fast as fp32; "fp32" elsewhere, where they run several times slower. `reason`
// says why, for the line a command prints about its choice.
struct AutoDtype {
  std::string name;    // "bf16" or "fp32"
  std::string reason;  // e.g. "the CPU has native bf16 dot products: avx512_bf16"
};
AutoDtype auto_dtype();

// `name` with "auto" replaced by auto_dtype().name; any other name is returned as it is (the
// caller checks it against the names it accepts).
std::string resolve_dtype(const std::string& name);

}  // namespace grpo
