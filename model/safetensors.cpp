#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/json_parse.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors is little-endian; so must the host be");

namespace grpo {
namespace {

std::string where(const std::string& path) { return "safetensors file '" + path + "'"; }
std::string where(const std::string& path, const std::string& tensor) {
  return where(path) + ", tensor '" + tensor + "'";
}
[[noreturn]] void fail(const std::string& context, const std::string& what) { throw InputError(context + ": " + what); }

// Non-negative integer from a JSON value, or nullopt.
std::optional<uint64_t> as_u64(const nlohmann::ordered_json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

}  // namespace

struct SafetensorsReader::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr) munmap(addr, size);
  }
};

SafetensorsReader::~SafetensorsReader() = default;
SafetensorsReader::SafetensorsReader(SafetensorsReader&&) noexcept = default;
SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&&) noexcept = default;

SafetensorsReader::SafetensorsReader(const std::string& path, const SafetensorsLimits& limits)
    : path_(path), map_(std::make_shared<Mapping>()) {
  const std::string ctx = where(path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ctx, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ctx, std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ctx, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(ctx, "truncated: " + std::to_string(file_size) + " bytes, less than the 8-byte header length");
  }
  // Private and writable: callers may modify returned tensors in place without touching the file.
  void* addr = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);
  if (addr == MAP_FAILED) fail(ctx, std::string("cannot mmap: ") + std::strerror(map_err));
  map_->addr = addr;
  map_->size = file_size;
  const auto* bytes = static_cast<const unsigned char*>(addr);

  uint64_t header_len;
  std::memcpy(&header_len, bytes, 8);
  if (header_len > limits.max_header_bytes)
    fail(ctx, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                  std::to_string(limits.max_header_bytes) + " bytes (not a safetensors file?)");
  if (header_len > file_size - 8)
    fail(ctx, "header length " + std::to_string(header_len) + " exceeds the file (" + std::to_string(file_size) +
                  " bytes): truncated or not a safetensors file");
  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;

  check_json_depth(std::string_view(reinterpret_cast<const char*>(bytes) + 8, header_len), ctx + ": header");
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail(ctx, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(ctx, "header is not a JSON object");

  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(ctx, "__metadata__ is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(ctx, "__metadata__ key '" + k + "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string tctx = where(path, name);
    if (!value.is_object()) fail(tctx, "header entry is not a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!value.contains(key)) fail(tctx, std::string("header entry has no '") + key + "'");
    const auto& jd = value["dtype"];
    if (!jd.is_string()) fail(tctx, "dtype is not a string");
    auto dtype = parse_dtype(jd.get<std::string>());
    if (!dtype) fail(tctx, "unknown dtype '" + jd.get<std::string>() + "'");
    const auto& js = value["shape"];
    if (!js.is_array()) fail(tctx, "shape is not an array");
    Entry e{*dtype, {}, 0, 0};
    uint64_t nbytes = dtype_size(*dtype);
    for (const auto& d : js) {
      auto n = as_u64(d);
      if (!n || *n > static_cast<uint64_t>(INT64_MAX))
        fail(tctx, "shape " + js.dump() + " has an entry that is not a non-negative integer");
      if (__builtin_mul_overflow(nbytes, *n, &nbytes)) fail(tctx, "shape " + js.dump() + " overflows");
      e.shape.push_back(static_cast<int64_t>(*n));
    }
    const auto& jo = value["data_offsets"];
    std::optional<uint64_t> b, en;
    if (jo.is_array() && jo.size() == 2) b = as_u64(jo[0]), en = as_u64(jo[1]);
    if (!b || !en || *b > *en)
      fail(tctx, "data_offsets " + jo.dump() + " is not a pair [begin, end] with 0 <= begin <= end");
    if (*en > data_size)
      fail(tctx, "data_offsets " + jo.dump() + " run past the data section (" + std::to_string(data_size) +
                     " bytes): file truncated?");
    if (*en - *b != nbytes)
      fail(tctx, "data_offsets " + jo.dump() + " span " + std::to_string(*en - *b) + " bytes but dtype " +
                     dtype_name(*dtype) + " with shape " + js.dump() + " needs " + std::to_string(nbytes));
    e.begin = *b;
    e.end = *en;
    entries_.emplace(name, std::move(e));
    order_.push_back(name);
  }
  std::stable_sort(order_.begin(), order_.end(), [&](const std::string& a, const std::string& b) {
    return entries_.at(a).begin < entries_.at(b).begin;
  });
  // No two non-empty tensors may share bytes.
  const std::string* prev = nullptr;
  for (const auto& name : order_) {
    const Entry& e = entries_.at(name);
    if (e.begin == e.end) continue;
    if (prev && entries_.at(*prev).end > e.begin)
      fail(where(path, name), "data_offsets overlap those of tensor '" + *prev + "'");
    prev = &name;
  }
}

std::vector<std::string> SafetensorsReader::names() const { return order_; }

bool SafetensorsReader::has(const std::string& name) const { return entries_.count(name) != 0; }

const SafetensorsReader::Entry& SafetensorsReader::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(where(path_, name), "no such tensor in the file");
  return it->second;
}

DType SafetensorsReader::dtype(const std::string& name) const { return entry(name).dtype; }

std::vector<int64_t> SafetensorsReader::shape(const std::string& name) const { return entry(name).shape; }

StoredTensor SafetensorsReader::get(const std::string& name) const {
  const Entry& e = entry(name);
  auto opts = at::TensorOptions().dtype(storage_scalar_type(e.dtype));
  if (e.begin == e.end) return {at::empty(e.shape, opts), e.dtype};
  char* p = static_cast<char*>(map_->addr) + data_start_ + e.begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) != 0) {  // misaligned: own a copy
    at::Tensor t = at::empty(e.shape, opts);
    std::memcpy(t.data_ptr(), p, e.end - e.begin);
    return {t, e.dtype};
  }
  std::shared_ptr<Mapping> keep = map_;
  return {at::from_blob(
              p, e.shape, [keep](void*) {}, opts),
          e.dtype};
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, StoredTensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Widest elements first keeps every tensor aligned to its element size with no gaps.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype) > dtype_size(tensors[b].second.dtype);
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  data.reserve(tensors.size());
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, st] = tensors[i];
    if (name == "__metadata__" || header.contains(name)) fail(where(path, name), "duplicate or reserved tensor name");
    if (!st.data.defined()) fail(where(path, name), "tensor is undefined");
    if (st.data.scalar_type() != storage_scalar_type(st.dtype))
      fail(where(path, name), std::string("data is ") + c10::toString(st.data.scalar_type()) + " but dtype " +
                                  dtype_name(st.dtype) + " is held as " + c10::toString(storage_scalar_type(st.dtype)));
    at::Tensor t = st.data.cpu().contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(st.dtype);
    header[name] = {
        {"dtype", dtype_name(st.dtype)}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  write_file_atomic(path, [&](int fd) {
    write_all(fd, &header_len, 8, path);
    write_all(fd, text.data(), text.size(), path);
    for (const auto& t : data) write_all(fd, t.data_ptr(), t.numel() * t.element_size(), path);
  });
}

}  // namespace grpo
