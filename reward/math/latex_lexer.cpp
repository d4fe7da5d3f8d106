#include "reward/math/latex_lexer.h"

#include <cctype>

namespace grpo::reward::math {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

}  // namespace

std::vector<Token> tokenize(std::string_view s, WorkBudget& budget) {
  std::vector<Token> out;
  bool space = false;
  size_t i = 0;
  auto push = [&](TokenType t, std::string text) {
    budget.charge();
    out.push_back(Token{t, std::move(text), space});
    space = false;
  };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80) {
      space = true;
      ++i;
      continue;
    }
    if (is_digit(c) || (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]))) {
      size_t j = i;
      while (j < s.size() && is_digit(s[j])) ++j;
      if (j < s.size() && s[j] == '.' && j + 1 < s.size() && is_digit(s[j + 1])) {
        ++j;
        while (j < s.size() && is_digit(s[j])) ++j;
      }
      // Scientific notation 1.5e3 / 2E-4: only when the exponent digits follow and no letter
      // continues the word (so 2e stays 2·e and 3ex stays 3·e·x).
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        size_t digits = k;
        while (k < s.size() && is_digit(s[k])) ++k;
        if (k > digits && (k >= s.size() || !is_alpha(s[k]))) j = k;
      }
      push(TokenType::Number, std::string(s.substr(i, j - i)));
      i = j;
      continue;
    }
    if (is_alpha(c)) {
      size_t j = i;
      while (j < s.size() && is_alpha(s[j])) ++j;
      push(TokenType::Word, std::string(s.substr(i, j - i)));
      i = j;
      continue;
    }
    if (c == '\\') {
      if (i + 1 < s.size() && is_alpha(s[i + 1])) {
        size_t j = i + 1;
        while (j < s.size() && is_alpha(s[j])) ++j;
        push(TokenType::Command, std::string(s.substr(i + 1, j - i - 1)));
        i = j;
        continue;
      }
      if (i + 1 < s.size()) {
        char n = s[i + 1];
        if (n == '\\')
          push(TokenType::Symbol, "\\\\");
        else if (n == '{' || n == '}')
          push(TokenType::Symbol, std::string("\\") + n);
        else if (n == '|')
          push(TokenType::Symbol, "|");
        else if (n == '%')
          push(TokenType::Symbol, "%");
        else
          space = true;  // \, \; and friends were removed; anything else is spacing too
        i += 2;
        continue;
      }
      ++i;
      continue;
    }
    auto two = s.substr(i, 2);
    if (two == "<=" || two == ">=" || two == "!=" || two == ":=" || two == "==" || two == "=<" || two == "=>") {
      std::string t(two);
      if (t == "==") t = "=";
      if (t == "=<") t = "<=";
      if (t == "=>") t = ">=";
      push(TokenType::Symbol, t);
      i += 2;
      continue;
    }
    if (two == "**") {
      push(TokenType::Symbol, "^");
      i += 2;
      continue;
    }
    push(TokenType::Symbol, std::string(1, c));
    ++i;
  }
  push(TokenType::End, "");
  return out;
}

}  // namespace grpo::reward::math
