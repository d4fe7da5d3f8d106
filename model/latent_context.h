// Where MLA's latent keys live during a forward (docs/architecture.md §3): one row per sequence of the batch,
// each row a chunk of T new tokens continuing that sequence's keys. Per layer the chunk's rows
// (c_kv | rotated k_rope) are stored and every key the row's queries may see is read back in one
// tensor, so the attention math (model/mla.h) is the same for a contiguous cache
// (model/latent_cache.h), a paged one (rollout/) or none.
//
// Protocol for one forward: begin(B, T) once; store(layer, kv) once per layer in order; commit()
// once all layers are done (a forward that throws never commits, so the context is unchanged as
// far as its owner can see).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace grpo {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct LatentChunk {
  // [B, T] int64: the key index of every query of the chunk inside its own sequence (its
  // position in that sequence). Query (b, t) attends to keys s <= slots[b, t] of row b.
  at::Tensor slots;
  // Some row continues keys stored before this chunk (decode, a later prefill chunk).
  bool continues = false;
  // Packed sequences (Feed::packed): the single row is sequences of these lengths back to back;
  // slots count from 0 in each, and a query sees only the keys of its own sequence, i.e. key
  // (start of its sequence + s) for s <= its slot. Empty: one sequence per row.
  std::vector<int64_t> packed;
  // Packed only: attention runs over the sequences as padded rows [n, L] (L the longest; a few ops
  // whatever n), the rest of the model over the packed row. gather [n·L]: the packed token at each
  // padded place (past a sequence's end, its last token again, which no query of it sees);
  // scatter [T]: each packed token's place in the padded rows. See packed_to_rows.
  at::Tensor gather, scatter;
};

// Packed chunk: x [1, T, ...] as padded rows [n, L, ...] (chunk.gather), and back
// (rows_to_packed: [n, L, ...] -> [1, T, ...]).
at::Tensor packed_to_rows(const at::Tensor& x, const LatentChunk& chunk);
at::Tensor rows_to_packed(const at::Tensor& y, const LatentChunk& chunk);

// Not thread-safe: one forward at a time. Its owner lends it to the model for one forward (a pointer, not kept).
class LatentContext {
 public:
  virtual ~LatentContext() = default;

  virtual int64_t num_layers() const = 0;
  // Starts a chunk of `tokens` new tokens for each of `batch` rows. Throws InputError when it
  // does not fit (wrong batch, no room).
  virtual LatentChunk begin(int64_t batch, int64_t tokens) = 0;
  // kv: [B, T, R + dr] the chunk's normed latent and rotated rope key at `layer`. Returns the keys
  // of `layer` [B, S, R + dr], row s = key s of that sequence (S covers every slot; entries past a
  // row's last slot are never attended to). Valid until the next store().
  virtual at::Tensor store(int64_t layer, const at::Tensor& kv) = 0;
  // The chunk becomes part of every row's keys.
  virtual void commit() = 0;
};

// The chunk of a forward over ids [B, T]: context->begin(B, T) with a context, else whole
// sequences (slots 0..T-1 in every row) or, with `packed` lengths, B = 1 row of sequences back to
// back. InputError for packed lengths with a context, B != 1, a length below 1 or a sum other than T.
// The chunk's tensors are on `device` (the model's; contexts build their slots on the CPU).
LatentChunk begin_chunk(LatentContext* context, const std::vector<int64_t>& packed, int64_t b, int64_t t,
                        at::Device device = at::kCPU);

}  // namespace grpo
