// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord files and of the
// experience store's records. Table-driven software implementation (slicing-by-8).
//   crc32c("123456789") == 0xE3069283
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace grpo {

// CRC-32C of `n` bytes; `crc` continues an earlier result: crc32c(b, m, crc32c(a, n)) is the CRC
// of the concatenation a|b.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
inline uint32_t crc32c(std::string_view s, uint32_t crc = 0) { return crc32c(s.data(), s.size(), crc); }

}  // namespace grpo
