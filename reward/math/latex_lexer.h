// Tokens of a normalised answer (LaTeX math or plain text).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "reward/math/expr.h"

namespace grpo::reward::math {

enum class TokenType {
  Number,   // 12, 1.5, .5, 1.5e3 (thousands separators were joined by normalize)
  Word,     // a run of ASCII letters: "x", "xy", "cm", "and"
  Command,  // \name (text holds the name without the backslash)
  Symbol,   // + - * / ^ _ ( ) [ ] { } , ; | = < > ! : ' & % and "<=", ">=", "!=", ":=", "\\",
            // "\{", "\}"
  End,
};

struct Token {
  TokenType type = TokenType::End;
  std::string text;
  bool space_before = false;  // whitespace separated it from the previous token
};

// Splits `text` into tokens, ending with one End token. Bytes outside ASCII are skipped like
// whitespace. Charges one work unit per token.
std::vector<Token> tokenize(std::string_view text, WorkBudget& budget);

}  // namespace grpo::reward::math
