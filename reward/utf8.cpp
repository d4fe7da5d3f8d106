#include "reward/utf8.h"

namespace grpo::reward {

bool next_code_point(std::string_view s, size_t& pos, char32_t& cp) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(pos);
  int len;
  char32_t min;
  if (b0 < 0x80) {
    cp = b0;
    ++pos;
    return true;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    len = 0, min = 0;
  }
  bool ok = len > 0 && pos + len <= s.size();
  for (int i = 1; ok && i < len; ++i) {
    const unsigned char b = byte(pos + i);
    ok = (b & 0xC0) == 0x80;
    cp = (cp << 6) | (b & 0x3F);
  }
  ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
  if (!ok) {
    cp = kReplacementChar;
    ++pos;
    return false;
  }
  pos += len;
  return true;
}

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  char32_t cp;
  for (size_t pos = 0; pos < s.size();) {
    next_code_point(s, pos, cp);
    out.push_back(cp);
  }
  return out;
}

bool is_well_formed_utf8(std::string_view s) {
  char32_t cp;
  for (size_t pos = 0; pos < s.size();)
    if (!next_code_point(s, pos, cp)) return false;
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string sanitize_utf8(std::string_view s) {
  if (is_well_formed_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  char32_t cp;
  for (size_t pos = 0; pos < s.size();) {
    size_t start = pos;
    if (next_code_point(s, pos, cp))
      out.append(s.substr(start, pos - start));
    else
      append_utf8(out, kReplacementChar);
  }
  return out;
}

}  // namespace grpo::reward
