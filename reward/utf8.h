// UTF-8 for model output, which is not guaranteed to be valid (a completion cut at the token
// limit can end inside a character). Strict decoding: overlong forms, surrogates and code points
// above U+10FFFF are invalid; each invalid byte decodes to U+FFFD and decoding resumes after it.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the code point at s[pos] and advances pos past it (one byte when invalid).
// Returns false (and sets cp = U+FFFD) for an invalid sequence.
bool next_code_point(std::string_view s, size_t& pos, char32_t& cp);

std::vector<char32_t> decode_utf8(std::string_view s);
// (reward/code_extract.h has a twin, is_valid_utf8; to be folded into this one.)
bool is_well_formed_utf8(std::string_view s);
// s with every invalid byte replaced by U+FFFD (valid input comes back unchanged).
std::string sanitize_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);

}  // namespace grpo::reward
