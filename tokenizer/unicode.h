// Unicode character classes the pre-tokenizer's patterns and the added tokens' word boundaries
// test (ICU's character properties). Pure functions; thread-safe.
#pragma once

namespace grpo::unicode {

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s test); false for
// utf8::kInvalid.
bool is_white_space(char32_t cp);
// The word class of Rust regex's \w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation,
// Join_Control; false for utf8::kInvalid.
bool is_word(char32_t cp);

}  // namespace grpo::unicode
