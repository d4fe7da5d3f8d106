#include "model/model_options.h"

#include "common/error.h"
#include "kernels/cpu_features.h"

namespace grpo {

AutoDtype auto_dtype() {
  const std::string native = kernels::cpu_native_bf16();
  if (!native.empty()) return {"bf16", "the CPU has native bf16 dot products: " + native};
  return {"fp32", "the CPU has no native bf16 dot products (no avx512_bf16 or amx_bf16): bf16 would run slower"};
}

std::string resolve_dtype(const std::string& name) { return name == "auto" ? auto_dtype().name : name; }

ModelOptions ModelOptions::for_dtype(const std::string& given) {
  const std::string name = resolve_dtype(given);
  ModelOptions o;
  if (name == "fp32" || name == "float32") {
    o.compute_dtype = o.param_dtype = at::kFloat;
  } else if (name == "bf16" || name == "bfloat16") {
    o.compute_dtype = o.param_dtype = at::kBFloat16;
  } else if (name == "fp8") {
    o.compute_dtype = o.param_dtype = at::kBFloat16;
    o.fp8 = true;
  } else {
    throw InputError("--dtype: expected fp32, bf16, fp8 or auto, got \"" + name + "\"");
  }
  return o;
}

}  // namespace grpo
