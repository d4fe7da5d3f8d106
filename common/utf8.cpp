#include "common/utf8.h"

namespace grpo::utf8 {

size_t decode(std::string_view text, size_t pos, char32_t* cp) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const unsigned char b0 = s[0];
  *cp = kInvalid;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  char32_t c, min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, c = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, c = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, c = b0 & 0x07, min = 0x10000;
  } else {
    return 1;
  }
  if (left < len) return 1;
  for (size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 1;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 1;
  *cp = c;
  return len;
}

void append(std::string& out, char32_t cp) {
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

size_t valid_prefix(std::string_view text) {
  size_t pos = 0;
  char32_t cp;
  while (pos < text.size()) {
    size_t n = decode(text, pos, &cp);
    if (cp == kInvalid) break;
    pos += n;
  }
  return pos;
}

bool is_valid(std::string_view text) { return valid_prefix(text) == text.size(); }

std::string sanitize(std::string_view text) {
  size_t pos = valid_prefix(text);
  if (pos == text.size()) return std::string(text);
  std::string out(text.substr(0, pos));
  out.reserve(text.size() + 8);
  char32_t cp;
  while (pos < text.size()) {
    const size_t n = decode(text, pos, &cp);
    if (cp == kInvalid)
      append(out, kReplacement);
    else
      out.append(text.substr(pos, n));
    pos += n;
  }
  return out;
}

size_t count_chars(std::string_view text) {
  size_t n = 0;
  char32_t cp;
  for (size_t pos = 0; pos < text.size(); ++n) pos += decode(text, pos, &cp);
  return n;
}

}  // namespace grpo::utf8
