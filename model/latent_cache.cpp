#include "model/latent_cache.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"

namespace grpo {

LatentCache::LatentCache(int64_t num_layers, int64_t batch, int64_t capacity, int64_t kv_lora_rank, int64_t rope_dim,
                         at::ScalarType dtype, at::Device device)
    : batch_(batch), capacity_(capacity), kv_lora_rank_(kv_lora_rank), rope_dim_(rope_dim) {
  if (batch <= 0 || capacity <= 0)
    throw InputError("latent cache: batch and capacity must be > 0 (got " + std::to_string(batch) + ", " +
                     std::to_string(capacity) + ")");
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < num_layers; ++l) kv_.push_back(at::zeros({batch, capacity, kv_lora_rank + rope_dim}, opts));
}

LatentCache LatentCache::for_model(const ModelConfig& config, int64_t batch, int64_t capacity, at::ScalarType dtype,
                                   at::Device device) {
  return LatentCache(config.num_hidden_layers, batch, capacity, config.kv_lora_rank, config.qk_rope_head_dim, dtype,
                     device);
}

LatentChunk LatentCache::begin(int64_t batch, int64_t tokens) {
  if (batch != batch_)
    throw InputError("latent cache: batch " + std::to_string(batch) + " does not match the cache's " +
                     std::to_string(batch_));
  if (length_ + tokens > capacity_)
    throw InputError("latent cache full: " + std::to_string(length_) + " cached + " + std::to_string(tokens) +
                     " new tokens exceed the capacity of " + std::to_string(capacity_));
  chunk_ = tokens;
  at::Tensor slots = at::arange(length_, length_ + tokens, at::kLong).unsqueeze(0).expand({batch, tokens});
  return {slots, length_ > 0};
}

at::Tensor LatentCache::store(int64_t layer, const at::Tensor& kv) {
  at::Tensor& dst = kv_.at(layer);
  dst.narrow(1, length_, chunk_).copy_(kv.detach());
  return dst.narrow(1, 0, length_ + chunk_);
}

void LatentCache::commit() {
  length_ += chunk_;
  chunk_ = 0;
}

namespace {

LatentChunk to_device(LatentChunk c, at::Device device) {
  auto move = [&](at::Tensor& t) {
    if (t.defined() && t.device() != device) t = t.to(device);
  };
  move(c.slots), move(c.gather), move(c.scatter);
  return c;
}

LatentChunk host_chunk(LatentContext* context, const std::vector<int64_t>& packed, int64_t b, int64_t t) {
  if (packed.empty()) {
    if (context) return context->begin(b, t);
    return {at::arange(t, at::kLong).unsqueeze(0).expand({b, t}), false, {}};
  }
  if (context) throw InputError("model input: packed sequences cannot continue a cache");
  if (b != 1) throw InputError("model input: packed sequences go in one row, got " + std::to_string(b) + " rows");
  int64_t sum = 0;
  std::vector<at::Tensor> slots;  // [len] each: positions restart per sequence
  for (size_t i = 0; i < packed.size(); ++i) {
    if (packed[i] < 1)
      throw InputError("model input: packed sequence " + std::to_string(i) + " has length " +
                       std::to_string(packed[i]) + " (expected >= 1)");
    sum += packed[i];
    slots.push_back(at::arange(packed[i], at::kLong));
  }
  if (sum != t)
    throw InputError("model input: packed lengths sum to " + std::to_string(sum) + " for a row of " +
                     std::to_string(t) + " tokens");
  const int64_t n = static_cast<int64_t>(packed.size());
  const int64_t longest = *std::max_element(packed.begin(), packed.end());
  std::vector<int64_t> gather(static_cast<size_t>(n * longest)), scatter;
  scatter.reserve(static_cast<size_t>(t));
  for (int64_t i = 0, start = 0; i < n; start += packed[static_cast<size_t>(i)], ++i)
    for (int64_t j = 0; j < longest; ++j) {
      const int64_t len = packed[static_cast<size_t>(i)];
      gather[static_cast<size_t>(i * longest + j)] = start + std::min(j, len - 1);
      if (j < len) scatter.push_back(i * longest + j);
    }
  return {at::cat(slots).unsqueeze(0), false, packed, at::tensor(gather, at::kLong),
          at::tensor(scatter, at::kLong)};  // slots [1, T]
}

}  // namespace

LatentChunk begin_chunk(LatentContext* context, const std::vector<int64_t>& packed, int64_t b, int64_t t,
                        at::Device device) {
  return to_device(host_chunk(context, packed, b, t), device);
}

at::Tensor packed_to_rows(const at::Tensor& x, const LatentChunk& chunk) {
  const int64_t n = static_cast<int64_t>(chunk.packed.size()), rows = chunk.gather.size(0);
  std::vector<int64_t> shape = x.sizes().vec();  // [1, T, ...] -> [n, L, ...]
  shape[0] = n;
  shape[1] = rows / n;
  return x.select(0, 0).index_select(0, chunk.gather).view(shape);
}

at::Tensor rows_to_packed(const at::Tensor& y, const LatentChunk& chunk) {
  std::vector<int64_t> shape = y.sizes().vec();  // [n, L, ...] -> [n·L, ...]
  shape.erase(shape.begin());
  shape[0] = chunk.gather.size(0);
  return y.reshape(shape).index_select(0, chunk.scatter).unsqueeze(0);
}

}  // namespace grpo
