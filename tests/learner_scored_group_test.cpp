// The scored-group record format: round trip, and every kind of damage is reported, never a crash.
#include "learner/scored_group.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/crc32c.h"
#include "learner_scored_group_testutil.h"
#include "model_ckpt_testutil.h"

using grpo::decode_scored_group;
using grpo::encode_scored_group;
using grpo::ScoredGroup;
using grpo::store_test::expect_same_group;
using grpo::store_test::make_group;
using ::testing::HasSubstr;

namespace {

// Rewrites the CRC so that a deliberately malformed body passes the checksum and reaches the parser.
std::string reseal(std::string rec) {
  const uint32_t crc = grpo::crc32c(rec.data() + 5, rec.size() - 5);
  for (int i = 0; i < 4; ++i) rec[1 + i] = static_cast<char>(crc >> (8 * i));
  return rec;
}

std::string decode_error(const std::string& rec) {
  std::string err;
  EXPECT_FALSE(decode_scored_group(rec, &err).has_value());
  return err;
}

}  // namespace

TEST(ScoredGroupRecord, RoundTripsEveryField) {
  const ScoredGroup g = make_group(42, 7, 4, 30);
  const std::string rec = encode_scored_group(g);
  EXPECT_EQ(static_cast<uint8_t>(rec[0]), grpo::kScoredGroupFormatVersion);
  std::string err;
  auto back = decode_scored_group(rec, &err);
  ASSERT_TRUE(back.has_value()) << err;
  expect_same_group(g, *back);

  ScoredGroup empty;  // no completions, empty strings
  auto e = decode_scored_group(encode_scored_group(empty));
  ASSERT_TRUE(e.has_value());
  expect_same_group(empty, *e);
}

TEST(ScoredGroupRecord, LayoutIsTheDocumentedOne) {
  ScoredGroup g;
  g.run_id = "r";
  g.step = 258;
  const std::string rec = encode_scored_group(g);
  // version | crc | u32 len "r" | i64 step | ... (4 empty strs/lists = 4 x u32 0) | 2 x i64 | u32 G=0
  ASSERT_EQ(rec.size(), 1u + 4 + (4 + 1) + 8 + 4 + 4 + 4 + 4 + 8 + 8 + 4);
  EXPECT_EQ(rec.substr(5, 5), std::string("\x01\x00\x00\x00r", 5));
  EXPECT_EQ(rec.substr(10, 8), std::string("\x02\x01\x00\x00\x00\x00\x00\x00", 8));
  const uint32_t crc = grpo::crc32c(rec.data() + 5, rec.size() - 5);
  EXPECT_EQ(rec.substr(1, 4), std::string(reinterpret_cast<const char*>(&crc), 4));
}

TEST(ScoredGroupRecord, EveryTruncationIsReported) {
  const std::string rec = encode_scored_group(make_group(3, 1, 2, 5));
  for (size_t n = 0; n < rec.size(); ++n) {
    std::string err = decode_error(rec.substr(0, n));
    EXPECT_FALSE(err.empty()) << n;
    // Past the header the checksum no longer matches; resealed, the parser finds the cut.
    if (n > 5) {
      EXPECT_THAT(decode_error(reseal(rec.substr(0, n))), HasSubstr("truncated")) << n;
    }
  }
}

TEST(ScoredGroupRecord, EveryFlippedByteIsReported) {
  const std::string rec = encode_scored_group(make_group(3, 1, 2, 5));
  for (size_t i = 0; i < rec.size(); ++i) {
    std::string bad = rec;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    std::string err = decode_error(bad);
    EXPECT_THAT(err, HasSubstr(i == 0 ? "unknown format version 65" : "checksum mismatch")) << i;
  }
}

TEST(ScoredGroupRecord, StructuralDamageBehindAValidChecksumIsReported) {
  const ScoredGroup g = make_group(3, 1, 1, 2);
  const std::string rec = encode_scored_group(g);
  EXPECT_THAT(decode_error(reseal(rec + "xy")), HasSubstr("2 trailing bytes"));
  // The completion count is the last field of a record without completions; it claims a billion.
  ScoredGroup no_completions = g;
  no_completions.completions.clear();
  const size_t count_at = encode_scored_group(no_completions).size() - 4;
  std::string huge = rec;
  huge.replace(count_at, 4, std::string("\x00\xCA\x9A\x3B", 4));
  EXPECT_THAT(decode_error(reseal(huge)), HasSubstr("completions cannot fit"));
  // correct flag and finish_reason are the bytes 18 and 17 from the end.
  std::string flag = rec;
  flag[rec.size() - 18] = 7;
  EXPECT_THAT(decode_error(reseal(flag)), HasSubstr("correct flag is 7"));
  std::string finish = rec;
  finish[rec.size() - 17] = 9;
  EXPECT_THAT(decode_error(reseal(finish)), HasSubstr("unknown finish_reason code 9"));
  EXPECT_THAT(decode_error(""), HasSubstr("empty record"));
  EXPECT_THAT(decode_error(std::string("\x01\x00", 2)), HasSubstr("truncated"));
}

TEST(ScoredGroupRecord, UnstorableGroupsAreInputErrors) {
  ScoredGroup g = make_group(1, 1);
  g.completions[1].logprobs.pop_back();
  grpo::ckpt_test::expect_input_error([&] { encode_scored_group(g); },
                                      {"prompt 'p1'", "completion 1", "12 token_ids but 11 logprobs"});
  ScoredGroup neg = make_group(-2, 1);
  grpo::ckpt_test::expect_input_error([&] { encode_scored_group(neg); }, {"step is -2"});
}
