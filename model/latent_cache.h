// MLA's decode cache (DESIGN §3): per layer only the compressed latent c_kv (already
// kv_a_layernorm-ed, kv_lora_rank values) and the shared, already-rotated rope key
// (qk_rope_head_dim values) of every cached token — never per-head K or V.
//
// Every row of the batch holds the same number of tokens (`length()`). A forward step appends
// its chunk to each layer (`append`) and commits with `advance` once all layers are done, so a
// step that throws half-way leaves the committed length unchanged. Values are stored detached:
// the cache is for inference.
#pragma once
#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "model/model_config.h"

namespace grpo {

class LatentCache {
 public:
  LatentCache(int64_t num_layers, int64_t batch, int64_t capacity, int64_t kv_lora_rank, int64_t rope_dim,
              at::ScalarType dtype);
  // A cache for every decoder layer of `config`.
  static LatentCache for_model(const ModelConfig& config, int64_t batch, int64_t capacity, at::ScalarType dtype);

  int64_t num_layers() const { return static_cast<int64_t>(c_kv_.size()); }
  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  // Values stored per token per layer: kv_lora_rank + qk_rope_head_dim.
  int64_t values_per_token() const { return kv_lora_rank_ + rope_dim_; }

  // Writes c_kv [B, T, kv_lora_rank] and k_rope [B, T, rope_dim] at positions
  // [length, length + T) of `layer`; returns views of positions [0, length + T).
  // Throws InputError when the chunk does not fit.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& c_kv, const at::Tensor& k_rope);
  void advance(int64_t tokens);  // commits a chunk appended to every layer
  void reset() { length_ = 0; }

  const at::Tensor& c_kv(int64_t layer) const { return c_kv_.at(layer); }      // [B, capacity, R]
  const at::Tensor& k_rope(int64_t layer) const { return k_rope_.at(layer); }  // [B, capacity, dr]

 private:
  std::vector<at::Tensor> c_kv_, k_rope_;
  int64_t batch_, capacity_, kv_lora_rank_, rope_dim_, length_ = 0;
};

}  // namespace grpo
