// One forward's view of the paged latent cache (model/latent_context.h): B rows, each continuing
// one sequence — its page table and the slot its chunk starts at — with T new tokens.
//
// store(layer, kv) writes the chunk into the pages with one index_copy and, when some row has
// earlier keys, gathers every row's pages into one padded buffer [B, P * page_size, R + dr]
// (P = the most pages of any row) with one index_select; slots past a row's length are masked by
// the attention (query t of a row sees slots <= start + t). A batch of fresh chunks (all rows
// start at slot 0) attends to the chunk itself, no gather. All index tensors and the gather
// buffer are members reused from forward to forward.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "model/latent_context.h"
#include "rollout/page_pool.h"

namespace grpo::rollout {

// Not thread-safe: the engine's step thread owns it. Keeps a reference to the pool (must outlive it); owns its tensors.
class PagedBatch : public LatentContext {
 public:
  explicit PagedBatch(PagePool& pool);

  // A plain value; `pages` is borrowed and read during set_rows() only.
  struct Row {
    const std::vector<int32_t>* pages;  // must cover slots [start, start + T) and own them exclusively
    int64_t start;                      // slots before this are already cached
  };
  // The rows of the next forward, `tokens` new tokens each.
  void set_rows(const std::vector<Row>& rows, int64_t tokens);

  int64_t num_layers() const override { return pool_.num_layers(); }
  // Checks (batch, tokens) against set_rows; slots start + 0..T-1 per row.
  LatentChunk begin(int64_t batch, int64_t tokens) override;
  at::Tensor store(int64_t layer, const at::Tensor& kv) override;
  // The engine advances its sequences itself.
  void commit() override {}

 private:
  PagePool& pool_;
  int64_t batch_ = 0, tokens_ = 0, pages_per_row_ = 0;
  bool continues_ = false;
  at::Tensor page_table_;  // [B * P] int64: each row's pages, padded with its last page
  at::Tensor write_rows_;  // [B * T] int64: pool row (page * page_size + offset) of each new token
  at::Tensor slots_;       // [B, T] int64
  // page_table_ and write_rows_ on the pool's device (the same tensors when that is the CPU).
  at::Tensor page_table_dev_, write_rows_dev_;
  at::Tensor keys_;  // [B * P, page_size, W] gather buffer
};

}  // namespace grpo::rollout
