#include "model/model_options.h"

#include "common/error.h"

namespace grpo {

ModelOptions ModelOptions::for_dtype(const std::string& name) {
  ModelOptions o;
  if (name == "fp32" || name == "float32") {
    o.compute_dtype = o.param_dtype = at::kFloat;
  } else if (name == "bf16" || name == "bfloat16") {
    o.compute_dtype = o.param_dtype = at::kBFloat16;
  } else if (name == "fp8") {
    o.compute_dtype = o.param_dtype = at::kBFloat16;
    o.fp8 = true;
  } else {
    throw InputError("--dtype: expected fp32, bf16 or fp8, got \"" + name + "\"");
  }
  return o;
}

}  // namespace grpo
