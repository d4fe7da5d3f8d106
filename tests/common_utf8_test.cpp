// common/utf8: the one UTF-8 codec of the tokenizer (byte-exact round trips) and of the reward
// services (model output that may be cut inside a character).
#include "common/utf8.h"

#include <gtest/gtest.h>

#include <vector>

using namespace grpo;

namespace {

std::vector<char32_t> decode_all(std::string_view s) {
  std::vector<char32_t> out;
  char32_t cp;
  for (size_t pos = 0; pos < s.size();) {
    pos += utf8::decode(s, pos, &cp);
    out.push_back(cp);
  }
  return out;
}

}  // namespace

TEST(Utf8, DecodesOneToFourBytes) {
  EXPECT_EQ(decode_all("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"), (std::vector<char32_t>{'a', 0xE9, 0x4E2D, 0x1F600}));
  std::string back;
  for (char32_t cp : {char32_t{'a'}, char32_t{0xE9}, char32_t{0x4E2D}, char32_t{0x1F600}}) utf8::append(back, cp);
  EXPECT_EQ(back, "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
}

TEST(Utf8, RejectsEveryInvalidFormOneByteAtATime) {
  EXPECT_TRUE(utf8::is_valid("plain ascii, é, 漢字, 😀"));
  EXPECT_TRUE(utf8::is_valid(""));
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xE4\xB8", "\x80"}) {
    EXPECT_FALSE(utf8::is_valid(bad)) << bad;
    const std::string_view s(bad);
    const std::vector<char32_t> cps = decode_all(s);
    EXPECT_EQ(cps.back(), utf8::kInvalid) << bad;
  }
  // overlong '/', surrogate U+D800, above U+10FFFF: each byte is invalid on its own
  EXPECT_EQ(decode_all("\xc0\xaf"), (std::vector<char32_t>{utf8::kInvalid, utf8::kInvalid}));
  EXPECT_EQ(decode_all("\xed\xa0\x80").size(), 3u);
  EXPECT_EQ(utf8::valid_prefix("ok \xE4\xB8\xAD\xE4\xB8"), 6u);  // cut in the middle of the second 中
}

TEST(Utf8, SanitizeWritesOneReplacementPerInvalidByte) {
  EXPECT_EQ(utf8::sanitize("ab\xE4\xB8"), "ab\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sanitize("ok 中"), "ok 中");
  const std::string bad = std::string("5") + "\xff" + "\xc3" + "x" + "\xed\xa0\x80";  // stray, truncated, surrogate
  EXPECT_EQ(utf8::sanitize(bad), "5\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(utf8::is_valid(utf8::sanitize("\xf4\x90\x80\x80 tail \xc3")));
}

TEST(Utf8, CountsCharactersWithInvalidBytesAsOne) {
  EXPECT_EQ(utf8::count_chars("h\xC3\xA9llo\xFF"), 6u);
  EXPECT_EQ(utf8::count_chars(""), 0u);
  EXPECT_EQ(utf8::count_chars("\xE4\xB8"), 2u);
}
