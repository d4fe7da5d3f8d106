// Element types as safetensors names them ("F32", "BF16", "F8_E4M3", ...) and their LibTorch storage.
// F8_E4M3 / F8_E5M2 are LibTorch's native float8 types (at::kFloat8_e4m3fn, at::kFloat8_e5m2).
#pragma once
#include <ATen/ATen.h>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

namespace grpo {

enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

namespace dtype_detail {
struct Info {
  DType dtype;
  const char* name;
  size_t size;
  at::ScalarType storage;
};
inline constexpr Info kInfos[] = {
    {DType::F64, "F64", 8, at::kDouble},
    {DType::F32, "F32", 4, at::kFloat},
    {DType::F16, "F16", 2, at::kHalf},
    {DType::BF16, "BF16", 2, at::kBFloat16},
    {DType::F8_E4M3, "F8_E4M3", 1, at::kFloat8_e4m3fn},
    {DType::F8_E5M2, "F8_E5M2", 1, at::kFloat8_e5m2},
    {DType::I64, "I64", 8, at::kLong},
    {DType::I32, "I32", 4, at::kInt},
    {DType::I16, "I16", 2, at::kShort},
    {DType::I8, "I8", 1, at::kChar},
    {DType::U8, "U8", 1, at::kByte},
    {DType::BOOL, "BOOL", 1, at::kBool},
};
inline const Info& info(DType t) { return kInfos[static_cast<int>(t)]; }
}  // namespace dtype_detail

// Bytes per element on disk.
inline size_t dtype_size(DType t) { return dtype_detail::info(t).size; }
// The safetensors spelling, e.g. "BF16".
inline const char* dtype_name(DType t) { return dtype_detail::info(t).name; }
// Inverse of dtype_name; nullopt for a name we do not know.
inline std::optional<DType> parse_dtype(const std::string& name) {
  for (const auto& i : dtype_detail::kInfos)
    if (name == i.name) return i.dtype;
  return std::nullopt;
}
// The at::ScalarType a tensor of this DType is held in.
inline at::ScalarType storage_scalar_type(DType t) { return dtype_detail::info(t).storage; }
// The DType a tensor of this scalar type is stored as.
// Throws std::invalid_argument for types safetensors cannot hold (complex, quantized).
inline DType dtype_of(at::ScalarType t) {
  for (const auto& i : dtype_detail::kInfos)
    if (i.storage == t) return i.dtype;
  throw std::invalid_argument(std::string("no safetensors dtype for ") + c10::toString(t));
}
inline bool is_fp8(DType t) { return t == DType::F8_E4M3 || t == DType::F8_E5M2; }
// True for F64, F32, F16, BF16 and both F8 formats.
inline bool is_floating(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16 || is_fp8(t);
}
// The HF config.json spelling of a float DType ("float32", "bfloat16", ...); others by dtype_name.
inline const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "float64";
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: return dtype_name(t);
  }
}

}  // namespace grpo
