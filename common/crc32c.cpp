#include "common/crc32c.h"

#include <array>
#include <cstring>

namespace grpo {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the 8-byte loads below assume a little-endian host");

// Slicing-by-8: t[0] is the classic byte table; t[k][b] is the CRC of byte b followed by k zero
// bytes, so eight input bytes fold in with eight independent lookups.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables make_tables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    t[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b)
    for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  return t;
}

const Tables kT = make_tables();

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= c;
    c = kT[7][w & 0xFF] ^ kT[6][(w >> 8) & 0xFF] ^ kT[5][(w >> 16) & 0xFF] ^ kT[4][(w >> 24) & 0xFF] ^
        kT[3][(w >> 32) & 0xFF] ^ kT[2][(w >> 40) & 0xFF] ^ kT[1][(w >> 48) & 0xFF] ^ kT[0][w >> 56];
  }
  for (; n > 0; --n, ++p) c = kT[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return ~c;
}

}  // namespace grpo
