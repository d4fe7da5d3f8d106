// The paged latent cache (docs/architecture.md §3: MLA caches only c_kv and the shared rope key): per layer one
// tensor [num_pages, page_size, R + dr] holding c_kv | k_rope of page_size token slots per page.
// A sequence owns a list of pages (its page table); slot s of the sequence lives in row
// s % page_size of its page s / page_size. Pages are reference counted so that the G samples of
// a group share the pages of their common prompt; a shared page is copied before it is written
// (copy-on-write, see Engine). Not thread-safe: the engine's step thread owns it.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace grpo::rollout {

class PagePool {
 public:
  // The pages on `device` (the model's).
  PagePool(int64_t num_layers, int64_t num_pages, int64_t page_size, int64_t width, at::ScalarType dtype,
           at::Device device = at::kCPU);

  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t num_pages() const { return static_cast<int64_t>(refs_.size()); }
  int64_t page_size() const { return page_size_; }
  int64_t width() const { return width_; }  // values per token per layer: kv_lora_rank + rope dim
  int64_t free_pages() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_pages() const { return num_pages() - free_pages(); }
  int64_t peak_used_pages() const { return peak_used_; }
  void reset_peak() { peak_used_ = used_pages(); }
  // Bytes of cache per token slot over all layers.
  int64_t bytes_per_token() const;

  // A fresh page with reference count 1, or -1 when none is free.
  int32_t allocate();
  void retain(int32_t page);
  // Drops one reference; the page is free again at zero.
  void release(int32_t page);
  int32_t refcount(int32_t page) const { return refs_.at(page); }
  // Copies the first `rows` slots of page `src` into page `dst`, in every layer.
  void copy(int32_t src, int32_t dst, int64_t rows);

  // [num_pages, page_size, width]
  const at::Tensor& layer(int64_t l) const { return layers_.at(l); }

 private:
  std::vector<at::Tensor> layers_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // a stack: the most recently freed page is reused first
  int64_t page_size_, width_, peak_used_ = 0;
};

}  // namespace grpo::rollout
