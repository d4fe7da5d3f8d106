#include "rollout/paged_batch.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace grpo::rollout {

PagedBatch::PagedBatch(PagePool& pool)
    : pool_(pool),
      page_table_(at::empty({0}, at::kLong)),
      write_rows_(at::empty({0}, at::kLong)),
      slots_(at::empty({0, 0}, at::kLong)),
      keys_(at::empty({0}, pool.layer(0).options())) {}

void PagedBatch::set_rows(const std::vector<Row>& rows, int64_t tokens) {
  const int64_t ps = pool_.page_size(), b = static_cast<int64_t>(rows.size());
  batch_ = b;
  tokens_ = tokens;
  pages_per_row_ = 0;
  continues_ = false;
  for (const Row& r : rows) {
    const int64_t needed = (r.start + tokens + ps - 1) / ps;
    TORCH_CHECK(static_cast<int64_t>(r.pages->size()) >= needed, "PagedBatch: a row has ", r.pages->size(),
                " pages, needs ", needed);
    pages_per_row_ = std::max(pages_per_row_, needed);
    continues_ = continues_ || r.start > 0;
  }
  page_table_.resize_({b * pages_per_row_});
  write_rows_.resize_({b * tokens});
  slots_.resize_({b, tokens});
  int64_t* table = page_table_.data_ptr<int64_t>();
  int64_t* write = write_rows_.data_ptr<int64_t>();
  int64_t* slot = slots_.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<int32_t>& pages = *rows[i].pages;
    const int64_t needed = (rows[i].start + tokens + ps - 1) / ps;
    for (int64_t p = 0; p < pages_per_row_; ++p) table[i * pages_per_row_ + p] = pages[std::min(p, needed - 1)];
    for (int64_t t = 0; t < tokens; ++t) {
      const int64_t s = rows[i].start + t;
      slot[i * tokens + t] = s;
      write[i * tokens + t] = pages[s / ps] * ps + s % ps;
    }
  }
  const at::Device device = pool_.layer(0).device();
  page_table_dev_ = page_table_.to(device);
  write_rows_dev_ = write_rows_.to(device);
}

LatentChunk PagedBatch::begin(int64_t batch, int64_t tokens) {
  if (batch != batch_ || tokens != tokens_)
    throw InputError("paged batch: a forward of [" + std::to_string(batch) + ", " + std::to_string(tokens) +
                     "] tokens, but the rows were set up for [" + std::to_string(batch_) + ", " +
                     std::to_string(tokens_) + "]");
  return {slots_, continues_};
}

at::Tensor PagedBatch::store(int64_t layer, const at::Tensor& kv) {
  const at::Tensor& pool = pool_.layer(layer);  // [num_pages, page_size, W]
  const int64_t w = pool_.width();
  pool.view({-1, w}).index_copy_(0, write_rows_dev_, kv.reshape({-1, w}).to(pool.scalar_type()));
  if (!continues_) return kv;                                      // every row starts at slot 0: its keys are the chunk
  keys_.resize_({batch_ * pages_per_row_, pool_.page_size(), w});  // keeps its storage when it fits
  at::index_select_out(keys_, pool, 0, page_table_dev_);
  return keys_.view({batch_, pages_per_row_ * pool_.page_size(), w});
}

}  // namespace grpo::rollout
