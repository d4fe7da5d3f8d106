// UTF-8 helpers for the tokenizer. Input text is arbitrary bytes: invalid sequences are reported
// per byte (never replaced), so every byte of the input survives to the byte-level model.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace grpo::utf8 {

// Code point stored for an invalid byte by decode().
constexpr char32_t kInvalid = 0xFFFFFFFF;

// Decodes the character starting at text[pos] (pos < text.size()). Returns its length in bytes
// (1..4) and stores the code point; an invalid or truncated sequence, an overlong form or a
// surrogate yields length 1 and kInvalid.
size_t decode(std::string_view text, size_t pos, char32_t* cp);

// Appends the UTF-8 form of a code point (< 0x110000).
void append(std::string& out, char32_t cp);

// Length of the longest prefix of text that is valid UTF-8.
size_t valid_prefix(std::string_view text);

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s test).
bool is_white_space(char32_t cp);
// The word class of Rust regex's \w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation,
// Join_Control.
bool is_word(char32_t cp);

}  // namespace grpo::utf8
