#include "model/latent_cache.h"

#include <string>

#include "common/error.h"

namespace grpo {

LatentCache::LatentCache(int64_t num_layers, int64_t batch, int64_t capacity, int64_t kv_lora_rank,
                         int64_t rope_dim, at::ScalarType dtype)
    : batch_(batch), capacity_(capacity), kv_lora_rank_(kv_lora_rank), rope_dim_(rope_dim) {
  if (batch <= 0 || capacity <= 0)
    throw InputError("latent cache: batch and capacity must be > 0 (got " + std::to_string(batch) + ", " +
                     std::to_string(capacity) + ")");
  auto opts = at::TensorOptions().dtype(dtype);
  for (int64_t l = 0; l < num_layers; ++l) {
    c_kv_.push_back(at::zeros({batch, capacity, kv_lora_rank}, opts));
    k_rope_.push_back(at::zeros({batch, capacity, rope_dim}, opts));
  }
}

LatentCache LatentCache::for_model(const ModelConfig& config, int64_t batch, int64_t capacity,
                                   at::ScalarType dtype) {
  return LatentCache(config.num_hidden_layers, batch, capacity, config.kv_lora_rank, config.qk_rope_head_dim,
                     dtype);
}

std::pair<at::Tensor, at::Tensor> LatentCache::append(int64_t layer, const at::Tensor& c_kv,
                                                      const at::Tensor& k_rope) {
  int64_t t = c_kv.size(1);
  if (c_kv.size(0) != batch_ || k_rope.size(0) != batch_)
    throw InputError("latent cache: batch " + std::to_string(c_kv.size(0)) + " does not match the cache's " +
                     std::to_string(batch_));
  if (length_ + t > capacity_)
    throw InputError("latent cache full: " + std::to_string(length_) + " cached + " + std::to_string(t) +
                     " new tokens exceed the capacity of " + std::to_string(capacity_));
  at::Tensor& c = c_kv_.at(layer);
  at::Tensor& k = k_rope_.at(layer);
  c.narrow(1, length_, t).copy_(c_kv.detach());
  k.narrow(1, length_, t).copy_(k_rope.detach());
  return {c.narrow(1, 0, length_ + t), k.narrow(1, 0, length_ + t)};
}

void LatentCache::advance(int64_t tokens) {
  if (length_ + tokens > capacity_) throw InputError("latent cache: advance past capacity");
  length_ += tokens;
}

}  // namespace grpo
