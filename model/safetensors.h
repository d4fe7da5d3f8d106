// safetensors files: a little-endian u64 header length N, N bytes of JSON
//   {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// and the tensor bytes, offsets counted from the end of the header.
//
// SafetensorsReader maps the file (no full read) and validates the whole header up front: every
// problem is a grpo::InputError naming the file and, where there is one, the tensor.
// write_safetensors writes HF-compatible files (header space-padded to 8 bytes, tensors packed
// without holes, widest element type first so every tensor is aligned) to a temp file, fsyncs it
// and renames it into place.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/dtype.h"

namespace grpo {

// One tensor as stored: data on CPU, contiguous, shape as on disk; F8 codes as LibTorch's float8 types.
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct StoredTensor {
  at::Tensor data;
  DType dtype;
};

struct SafetensorsLimits {
  uint64_t max_header_bytes = 100ull << 20;  // the HF reference library's limit as well
};

// Thread-safety: immutable once opened; const methods may run concurrently. Owns the mapping; get()'s tensors share it.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path, const SafetensorsLimits& limits = {});
  ~SafetensorsReader();
  SafetensorsReader(SafetensorsReader&&) noexcept;
  SafetensorsReader& operator=(SafetensorsReader&&) noexcept;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // in file (data offset) order
  bool has(const std::string& name) const;
  DType dtype(const std::string& name) const;
  std::vector<int64_t> shape(const std::string& name) const;
  // A view of the mapped bytes (copy-on-write private mapping: writing to it never touches the
  // file); the tensor keeps the mapping alive after the reader is gone. The file must not be
  // truncated or rewritten in place meanwhile (replacing it by rename, as our writers do, is fine).
  StoredTensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;  // relative to the data section
  };
  struct Mapping;
  const Entry& entry(const std::string& name) const;

  std::string path_;
  std::shared_ptr<Mapping> map_;
  uint64_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any order; stored widest dtype first, then in the given order) atomically.
// Throws grpo::InputError naming the tensor if its data does not match its dtype.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, StoredTensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace grpo
