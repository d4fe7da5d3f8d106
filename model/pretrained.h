// Models from / to a HuggingFace checkpoint directory (config.json + safetensors,
// sharded or not, FP8 dequantised on load). Errors are grpo::InputError naming the file and, for
// tensors, the tensor name and the expected and found shapes.
#pragma once
#include <memory>
#include <string>

#include "model/checkpoint.h"
#include "model/deepseek.h"
#include "model/dense_decoder.h"

namespace grpo {

// With options.fp8 the linear weights are FP8: taken as stored from an FP8 (e4m3, 128×128)
// checkpoint, quantised on load from a float one.
// The MTP modules are built (options.mtp) exactly when num_nextn_predict_layers > 0 and the
// checkpoint holds their weights (model.layers.{num_hidden_layers}.eh_proj.weight).
DeepseekModel load_pretrained(const std::string& dir, ModelOptions options = {});

// A dense (Llama / Qwen2) checkpoint; options.fp8 and options.mtp must be off.
DenseDecoder load_dense_pretrained(const std::string& dir, ModelOptions options = {});

// Either family, chosen by config.json's model_type (make_causal_lm): the loaders above.
std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, const ModelOptions& options = {});

// config.json (the model's own, dtype keys adjusted by save_weights) + weights, atomically.
void save_pretrained(const CausalLM& model, const std::string& dir, const SaveOptions& opt = {});

}  // namespace grpo
