#include "rollout/page_pool.h"

#include <string>

#include "common/error.h"

namespace grpo::rollout {

PagePool::PagePool(int64_t num_layers, int64_t num_pages, int64_t page_size, int64_t width, at::ScalarType dtype,
                   at::Device device)
    : refs_(num_pages, 0), page_size_(page_size), width_(width) {
  if (num_pages <= 0 || page_size <= 0)
    throw InputError("paged cache: num_pages and page_size must be > 0 (got " + std::to_string(num_pages) + ", " +
                     std::to_string(page_size) + ")");
  for (int64_t l = 0; l < num_layers; ++l)
    layers_.push_back(at::zeros({num_pages, page_size, width}, at::TensorOptions().dtype(dtype).device(device)));
  for (int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(static_cast<int32_t>(p));
}

int64_t PagePool::bytes_per_token() const {
  return num_layers() * width_ * static_cast<int64_t>(layers_.empty() ? 0 : layers_[0].element_size());
}

int32_t PagePool::allocate() {
  if (free_.empty()) return -1;
  int32_t p = free_.back();
  free_.pop_back();
  refs_[p] = 1;
  peak_used_ = std::max(peak_used_, used_pages());
  return p;
}

void PagePool::retain(int32_t page) {
  TORCH_CHECK(refs_.at(page) > 0, "PagePool::retain of free page ", page);
  ++refs_[page];
}

void PagePool::release(int32_t page) {
  TORCH_CHECK(refs_.at(page) > 0, "PagePool::release of free page ", page);
  if (--refs_[page] == 0) free_.push_back(page);
}

void PagePool::copy(int32_t src, int32_t dst, int64_t rows) {
  for (at::Tensor& l : layers_) l[dst].narrow(0, 0, rows).copy_(l[src].narrow(0, 0, rows));
}

}  // namespace grpo::rollout
