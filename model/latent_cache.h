// MLA's contiguous decode cache (docs/architecture.md §3): per layer only the compressed latent c_kv (already
// kv_a_layernorm-ed, kv_lora_rank values) and the shared, already-rotated rope key
// (qk_rope_head_dim values) of every cached token — never per-head K or V — in one tensor
// [B, capacity, R + dr] per layer.
//
// Every row of the batch holds the same number of tokens (`length()`): the simple LatentContext
// for one-off generation and tests; the rollout engine's paged cache is the other one. Values are
// stored detached: the cache is for inference. Other models store their own rows in it
// (CausalLM::make_cache: kv_lora_rank = the row width, rope_dim = 0; a dense decoder's rows are
// its keys | values).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "model/latent_context.h"
#include "model/model_config.h"

namespace grpo {

// Not thread-safe: one forward at a time. Owns its cache tensors.
class LatentCache : public LatentContext {
 public:
  LatentCache(int64_t num_layers, int64_t batch, int64_t capacity, int64_t kv_lora_rank, int64_t rope_dim,
              at::ScalarType dtype, at::Device device = at::kCPU);
  // A cache for every decoder layer of `config`.
  static LatentCache for_model(const ModelConfig& config, int64_t batch, int64_t capacity, at::ScalarType dtype,
                               at::Device device = at::kCPU);

  int64_t num_layers() const override { return static_cast<int64_t>(kv_.size()); }
  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  // Values stored per token per layer: kv_lora_rank + qk_rope_head_dim.
  int64_t values_per_token() const { return kv_lora_rank_ + rope_dim_; }
  void reset() { length_ = 0; }

  // Slots length .. length + T - 1 in every row. Throws InputError when the chunk does not fit.
  LatentChunk begin(int64_t batch, int64_t tokens) override;
  // Writes the chunk at [length, length + T) and returns positions [0, length + T).
  at::Tensor store(int64_t layer, const at::Tensor& kv) override;
  void commit() override;

  at::Tensor c_kv(int64_t layer) const { return kv_.at(layer).narrow(-1, 0, kv_lora_rank_); }            // [B, cap, R]
  at::Tensor k_rope(int64_t layer) const { return kv_.at(layer).narrow(-1, kv_lora_rank_, rope_dim_); }  // [B, cap, dr]

 private:
  std::vector<at::Tensor> kv_;  // per layer [B, capacity, R + dr]
  int64_t batch_, capacity_, kv_lora_rank_, rope_dim_, length_ = 0, chunk_ = 0;
};

}  // namespace grpo
