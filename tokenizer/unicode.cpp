#include "tokenizer/unicode.h"

#include <unicode/uchar.h>

#include "common/utf8.h"

namespace grpo::unicode {

bool is_white_space(char32_t cp) { return cp != utf8::kInvalid && u_isUWhiteSpace(static_cast<UChar32>(cp)); }

bool is_word(char32_t cp) {
  if (cp == utf8::kInvalid) return false;
  const auto c = static_cast<UChar32>(cp);
  if (u_isUAlphabetic(c) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) return true;
  const uint32_t mask = U_GET_GC_MASK(c);
  return (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

}  // namespace grpo::unicode
