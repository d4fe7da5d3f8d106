// A DeepseekModel from / to a HuggingFace checkpoint directory (config.json + safetensors,
// sharded or not, FP8 dequantised on load). Errors are grpo::InputError naming the file and, for
// tensors, the tensor name and the expected and found shapes.
#pragma once
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

// config.json (the model's own, dtype keys adjusted by save_weights) + weights, atomically.
void save_pretrained(const DeepseekModel& model, const std::string& dir, const SaveOptions& opt = {});

// A dense (Llama / Qwen2) checkpoint; options.fp8 and options.mtp must be off.
DenseDecoder load_dense_pretrained(const std::string& dir, ModelOptions options = {});
void save_pretrained(const DenseDecoder& model, const std::string& dir, const SaveOptions& opt = {});

// Whether DIR/config.json (or the config.json given) names a dense decoder (model/dense_decoder.h),
// so commands can dispatch on it; InputError when it cannot be read.
bool is_dense_checkpoint(const std::string& path);

}  // namespace grpo
