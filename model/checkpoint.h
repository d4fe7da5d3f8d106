// HuggingFace checkpoints: a directory with config.json and either model.safetensors or
// model.safetensors.index.json ({"metadata": {"total_size": N}, "weight_map": {tensor: shard}}) plus
// its shards model-0000i-of-0000n.safetensors. Every load error is a grpo::InputError naming the
// file (index, shard) and the tensor; every save goes to DIR.tmp first and is swapped into place
// only when complete and fsynced, so a crash never leaves a half-written DIR.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "model/safetensors.h"

namespace grpo {

// The tensors exactly as stored (dtype and bytes), from a checkpoint directory or one
// .safetensors file. Tensors are views of the mapped files (they keep them mapped).
std::map<std::string, StoredTensor> load_checkpoint_raw(const std::string& path);

// Writes `raw` unchanged (same dtypes, same bytes) as DIR/model.safetensors, or as shards of at most
// max_shard_bytes (a bigger tensor gets a shard of its own) with the index, plus DIR/config.json
// (skipped when `config` is null) and `files` (name in DIR -> contents, e.g. the tokenizer's),
// all in the staging directory before the swap. Files already in DIR other than config.json, model
// weights and `files` (tokenizer files, ...) are kept.
void save_checkpoint_raw(const std::string& dir, const std::map<std::string, StoredTensor>& raw,
                         const nlohmann::json& config, int64_t max_shard_bytes = 5LL << 30,
                         const std::map<std::string, std::string>& files = {});

// name -> tensor, floating tensors converted to `dtype` (a floating type), integer and bool tensors
// kept. An FP8 `X` with an `X_scale_inv` beside it (X.weight + X.weight_scale_inv) is dequantised
// block-wise (block size from config.json's quantization_config.weight_block_size, default 128)
// and the scale entry dropped; an FP8 tensor without a scale is decoded as is.
// With `keep_fp8` (the raw path for FP8 inference), a 2-D e4m3 `X` with 128×128 block scales
// stays as it is stored: X = codes (float8_e4m3fn) and X_scale_inv = scales (float32).
std::map<std::string, at::Tensor> load_weights(const std::string& path, at::ScalarType dtype = at::kFloat,
                                               bool keep_fp8 = false);

// Plain tensor files beside a checkpoint (optimizer moments and the like): every tensor stored in
// its own dtype, atomically; load_tensors returns copies (not views of the mapped file).
void save_tensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors);
std::map<std::string, at::Tensor> load_tensors(const std::string& path);

// Starts the next version of checkpoint directory `dir` in `stage` (emptied first): hard links to
// (or copies of) dir's files other than the model weights, index and config.json (kept too when
// keep_config), e.g. tokenizer files and logs. Finish with publish_dir(stage, dir).
void begin_stage(const std::string& dir, const std::string& stage, bool keep_config);

// Moves the finished directory `stage` onto `dir` (an atomic exchange when `dir` exists, else a
// rename), then syncs; nothing of the old `dir` is kept. For writers of checkpoint directories that
// hold more than the weights (the trainer's optimizer state).
void publish_dir(const std::string& stage, const std::string& dir);

struct SaveOptions {
  int64_t max_shard_bytes = 5LL << 30;
  // F64 / F32 / F16 / BF16: every floating tensor in that type. F8_E4M3: 2-D `.weight` matrices are
  // block-quantised (codes + `.weight_scale_inv`, F32) except embeddings, lm_head, norms and the MoE
  // router (`mlp.gate.weight`), which are stored as `unquantized_dtype`; config.json gets
  // DeepSeek-V3's quantization_config. `e_score_correction_bias` is always F32 (bf16 would swallow
  // the small aux-loss-free bias updates).
  DType dtype = DType::F32;
  DType unquantized_dtype = DType::BF16;
  // Written beside the weights, in the same atomic swap: name in DIR -> contents (the tokenizer's
  // files, tokenizer/checkpoint_files.h).
  std::map<std::string, std::string> files;
};

// Converts `weights` per `opt` and writes them with `config` (quantization_config and dtype keys
// adjusted to what was written) via save_checkpoint_raw.
void save_weights(const std::string& dir, const std::map<std::string, at::Tensor>& weights,
                  const nlohmann::json& config, const SaveOptions& opt = {});

// True for the tensors SaveOptions{F8_E4M3} quantises (by name and shape).
bool is_fp8_quantizable(const std::string& name, const at::Tensor& t);

}  // namespace grpo
