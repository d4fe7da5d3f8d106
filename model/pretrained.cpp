#include "model/pretrained.h"

#include "model/device.h"
#include "model/json_keys.h"

namespace grpo {
namespace {

// Stops before a model of `weights` is built on a device too small for it: the bytes its
// parameters take there (floating tensors in the parameter dtype, FP8 codes one byte each).
void check_fits(const std::map<std::string, at::Tensor>& weights, const ModelOptions& options, const std::string& dir) {
  if (options.device.is_cpu()) return;
  int64_t bytes = 0;
  for (const auto& [name, w] : weights) {
    const bool as_is = w.scalar_type() == at::kFloat8_e4m3fn || !at::isFloatingType(w.scalar_type());
    bytes += w.numel() * static_cast<int64_t>(at::elementSize(as_is ? w.scalar_type() : options.param_dtype));
  }
  check_device_memory(options.device, bytes, dir);
}

}  // namespace

DeepseekModel load_pretrained(const std::string& dir, ModelOptions options) {
  ModelConfig config = ModelConfig::load(dir);
  // Read in at least fp32: the router and its bias stay fp32 in the model (load_state casts every
  // other tensor to the parameter dtype), so they must not pass through bf16 on the way.
  std::map<std::string, at::Tensor> weights =
      load_weights(dir, options.param_dtype == at::kDouble ? at::kDouble : at::kFloat, /*keep_fp8=*/options.fp8);
  options.mtp = config.num_nextn_predict_layers > 0 &&
                weights.count("model.layers." + std::to_string(config.num_hidden_layers) + ".eh_proj.weight");
  check_fits(weights, options, dir);
  DeepseekModel model(std::move(config), options);
  model.load_state(weights, dir);
  return model;
}

DenseDecoder load_dense_pretrained(const std::string& dir, ModelOptions options) {
  DenseConfig config = DenseConfig::load(dir);
  std::map<std::string, at::Tensor> weights =
      load_weights(dir, options.param_dtype == at::kDouble ? at::kDouble : at::kFloat);
  check_fits(weights, options, dir);
  DenseDecoder model(std::move(config), options);
  model.load_state(weights, dir);
  return model;
}

std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, const ModelOptions& options) {
  if (is_dense_config(read_config_json(dir)))
    return std::make_unique<DenseDecoder>(load_dense_pretrained(dir, options));
  return std::make_unique<DeepseekModel>(load_pretrained(dir, options));
}

void save_pretrained(const CausalLM& model, const std::string& dir, const SaveOptions& opt) {
  save_weights(dir, model.state_dict(), model.config_json(), opt);
}

}  // namespace grpo
