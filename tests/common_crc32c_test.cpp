#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {

// Bit-at-a-time CRC-32C straight from the definition, the reference for the table version.
uint32_t crc32c_bitwise(const unsigned char* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

}  // namespace

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(grpo::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(grpo::crc32c(""), 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i) up[i] = static_cast<unsigned char>(i), down[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(grpo::crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(grpo::crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(grpo::crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(grpo::crc32c(down.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32c, MatchesBitwiseReferenceAtEveryLengthAndOffset) {
  std::mt19937 rng(7);
  std::vector<unsigned char> buf(300);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (size_t off = 0; off < 4; ++off)
    for (size_t n = 0; n + off <= buf.size(); ++n)
      ASSERT_EQ(grpo::crc32c(buf.data() + off, n), crc32c_bitwise(buf.data() + off, n)) << off << " " << n;
}

TEST(Crc32c, ContinuesAcrossPieces) {
  const std::string s = "The quick brown fox jumps over the lazy dog";
  for (size_t cut = 0; cut <= s.size(); ++cut)
    EXPECT_EQ(grpo::crc32c(s.substr(cut), grpo::crc32c(s.substr(0, cut))), grpo::crc32c(s)) << cut;
}
