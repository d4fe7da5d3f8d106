// UTF-8, strictly: overlong forms, surrogates and code points above U+10FFFF are invalid. Text
// from users and from the model is arbitrary bytes (a completion cut at the token limit can end
// inside a character), so nothing here assumes valid input. Pure functions; thread-safe.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace grpo::utf8 {

// Code point stored by decode() for an invalid byte.
constexpr char32_t kInvalid = 0xFFFFFFFF;
// U+FFFD REPLACEMENT CHARACTER, what sanitize() writes for each invalid byte.
constexpr char32_t kReplacement = 0xFFFD;

// Decodes the character starting at text[pos] (pos < text.size()). Returns its length in bytes
// (1..4) and stores the code point; an invalid or truncated sequence, an overlong form or a
// surrogate yields length 1 and kInvalid.
size_t decode(std::string_view text, size_t pos, char32_t* cp);

// Appends the UTF-8 form of a code point (< 0x110000).
void append(std::string& out, char32_t cp);

// Length of the longest prefix of text that is valid UTF-8.
size_t valid_prefix(std::string_view text);

// Whether all of text is valid UTF-8.
bool is_valid(std::string_view text);

// text with every invalid byte replaced by U+FFFD (valid text comes back unchanged).
std::string sanitize(std::string_view text);

// Number of characters, an invalid byte counting as one.
size_t count_chars(std::string_view text);

}  // namespace grpo::utf8
