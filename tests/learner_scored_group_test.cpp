// The scored-group record format: round trip, and every kind of damage is reported, never a crash.
#include "learner/scored_group.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "common/crc32c.h"
#include "learner_scored_group_testutil.h"
#include "model_ckpt_testutil.h"

using grpo::Completion;
using grpo::decode_scored_group;
using grpo::encode_scored_group;
using grpo::ScoredGroup;
using grpo::store_test::add_routes;
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
    EXPECT_THAT(err, HasSubstr(i == 0 ? "unknown format version 66" : "checksum mismatch")) << i;
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
  // correct flag and finish_reason are the bytes 30 and 29 from the end (before 2 x i64, 3 x u32).
  std::string flag = rec;
  flag[rec.size() - 30] = 7;
  EXPECT_THAT(decode_error(reseal(flag)), HasSubstr("correct flag is 7"));
  std::string finish = rec;
  finish[rec.size() - 29] = 9;
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

TEST(ScoredGroupRecord, RoundTripsRoutes) {
  ScoredGroup g = make_group(5, 2, 3, 9);
  add_routes(g, 3, 2);
  g.completions[1].routes = {};  // one completion without routes
  std::string err;
  auto back = decode_scored_group(encode_scored_group(g), &err);
  ASSERT_TRUE(back.has_value()) << err;
  expect_same_group(g, *back);
  ASSERT_EQ(back->completions[0].routes.experts.size(), (4u + 9 - 1) * 3 * 2);
  EXPECT_EQ(back->completions[0].routes.experts[0], 65535);
  EXPECT_TRUE(back->completions[1].routes.empty());

  // Without routes, a completion ends with three zero counts.
  const std::string plain = encode_scored_group(make_group(5, 2, 1, 9));
  EXPECT_EQ(plain.substr(plain.size() - 12), std::string(12, '\0'));
}

TEST(ScoredGroupRecord, RoutesLayoutIsTheDocumentedOne) {
  ScoredGroup g;
  g.prompt_token_ids = {9};
  Completion c;
  c.token_ids = {4, 5};
  c.logprobs = {-1, -2};
  c.routes = {2, 1, 2, {1, 2, 3, 0x0102}};  // tokens 2, layers 1, top_k 2
  g.completions.push_back(c);
  const std::string rec = encode_scored_group(g);
  // layers 1 | top_k 2 | tokens 2 | ids 1 2 3 0x0102, u16 little-endian
  const std::string tail("\x01\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00\x03\x00\x02\x01", 20);
  EXPECT_EQ(rec.substr(rec.size() - tail.size()), tail);
}

TEST(ScoredGroupRecord, Version1RecordsStillDecode) {
  // A version-1 record written field by field: no routes after finished_us.
  std::string body;
  auto u32 = [&](uint32_t v) { body.append(reinterpret_cast<const char*>(&v), 4); };
  auto i64 = [&](int64_t v) { body.append(reinterpret_cast<const char*>(&v), 8); };
  auto f64 = [&](double v) { body.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    body += s;
  };
  str("run");
  i64(3);
  str("p7");
  str("2+2?");
  u32(2), u32(11), u32(12);  // prompt_token_ids
  str("4");
  i64(100), i64(200);  // created_us, scored_us
  u32(1);              // G
  str("4</s>");
  u32(2), u32(13), u32(14);  // token_ids
  const float lp[2] = {-0.5f, -0.25f};
  u32(2), body.append(reinterpret_cast<const char*>(lp), 8);
  f64(1.0);
  u32(1), str("accuracy"), f64(1.0);
  str("equal");
  body += '\x01';  // correct
  body += '\x01';  // finish_reason: length
  i64(2), i64(300);
  const uint32_t crc = grpo::crc32c(body.data(), body.size());
  std::string rec(1, '\x01');
  rec.append(reinterpret_cast<const char*>(&crc), 4);
  rec += body;

  std::string err;
  auto g = decode_scored_group(rec, &err);
  ASSERT_TRUE(g.has_value()) << err;
  EXPECT_EQ(g->prompt_id, "p7");
  EXPECT_EQ(g->prompt_token_ids, (std::vector<int32_t>{11, 12}));
  ASSERT_EQ(g->completions.size(), 1u);
  const Completion& c = g->completions[0];
  EXPECT_EQ(c.token_ids, (std::vector<int32_t>{13, 14}));
  EXPECT_EQ(c.logprobs, (std::vector<float>{-0.5f, -0.25f}));
  EXPECT_EQ(c.reward_components.at("accuracy"), 1.0);
  EXPECT_EQ(c.finish_reason, grpo::FinishReason::kLength);
  EXPECT_EQ(c.finished_us, 300);
  EXPECT_TRUE(c.routes.empty());
  // The same bytes read as version 2 lack the routes.
  rec[0] = '\x02';
  EXPECT_THAT(decode_error(rec), HasSubstr("truncated: completion 0 routes layers"));
  EXPECT_THAT(decode_error(std::string("\x03", 1) + rec.substr(1)), HasSubstr("unknown format version 3"));
}

TEST(ScoredGroupRecord, DamagedRoutesAreReported) {
  ScoredGroup g = make_group(3, 1, 2, 5);  // prompt 4 tokens: routes of 8 tokens
  add_routes(g, 2, 3);
  const std::string rec = encode_scored_group(g);
  const size_t last = rec.size() - 8 * 2 * 3 * 2 - 12;  // the last completion's route counts
  auto with = [&](size_t at, uint32_t v) {
    std::string bad = rec;
    std::memcpy(&bad[at], &v, 4);
    return reseal(bad);
  };
  EXPECT_THAT(decode_error(with(last + 8, 9)),
              HasSubstr("completion 1 routes: 9 tokens, expected 8 (prompt 4 + completion 5 - 1)"));
  EXPECT_THAT(decode_error(with(last, 0)),
              HasSubstr("completion 1 routes: layers 0, top_k 3, tokens 8; expected all three >= 1, or all 0"));
  EXPECT_THAT(decode_error(with(last + 4, 0xFFFFFFFF)), HasSubstr("truncated: completion 1 routes (layers 2, "));
  EXPECT_THAT(decode_error(reseal(rec.substr(0, rec.size() - 1))),
              HasSubstr("truncated: completion 1 routes (layers 2, top_k 3, tokens 8) cannot fit in 95 bytes"));
  EXPECT_THAT(decode_error(with(last + 4, 2)),
              HasSubstr("32 trailing bytes"));  // top_k 2 reads 8 x 2 x 2 of the 8 x 2 x 3 ids

  for (size_t n = 6; n < rec.size(); ++n)  // every cut, behind a valid checksum
    EXPECT_THAT(decode_error(reseal(rec.substr(0, n))), HasSubstr("truncated")) << n;
}

TEST(ScoredGroupRecord, MismatchedRoutesAreInputErrors) {
  ScoredGroup g = make_group(1, 1, 2, 5);
  add_routes(g, 2, 3);
  ScoredGroup off = g;
  off.completions[1].routes.tokens = 9;
  grpo::ckpt_test::expect_input_error([&] { encode_scored_group(off); },
                                      {"prompt 'p1'", "completion 1 routes", "9 tokens, expected 8"});
  ScoredGroup short_ids = g;
  short_ids.completions[0].routes.experts.pop_back();
  grpo::ckpt_test::expect_input_error([&] { encode_scored_group(short_ids); },
                                      {"completion 0 routes", "47 expert ids", "8 x 2 x 3"});
  ScoredGroup no_k = g;
  no_k.completions[0].routes.top_k = 0;
  grpo::ckpt_test::expect_input_error([&] { encode_scored_group(no_k); }, {"top_k 0", "[1, 2^32-1]"});
}
