// LaTeX / plain-text answer -> expression tree.
//
// A recursive-descent parser with an explicit depth limit: nesting deeper than
// ParseOptions::max_depth is a ParseError, never a stack overflow. Unknown commands become opaque
// symbols rather than errors. Grammar, loosest first:
//   top       := list (';' list)*
//   list      := relation ((',' | and | or | \\) relation)*
//   relation  := union (relop union)*          relop: = < > \le \ge \ne \approx \in
//   union     := ratio (\cup ratio)*
//   ratio     := additive (':' additive)?
//   additive  := term (('+' | '-' | \pm | \mp) term)*
//   term      := unary (('*' | \cdot | \times | '/' | \div | <implicit>) unary)*
//   unary     := ('-' | '+' | \pm) unary | power
//   power     := postfix ('^' exponent)?
//   primary   := number | letters | \command ... | (..) | [..] | \{..\} | |..| | {..}
#pragma once
#include <string_view>

#include "reward/math/expr.h"

namespace grpo::reward::math {

struct ParseOptions {
  // Nesting levels: brackets, braces, |..|, commands with arguments, exponents, signs. Each
  // level costs a bounded number of stack frames, so the limit also bounds stack use.
  int max_depth = 100;
  bool plain = false;  // the answer came from plain text: unknown words are words, not letters
};

// Parses a normalised answer (see normalize.h). Throws ParseError for input it cannot read and
// BudgetExceeded when `budget` runs out.
NodePtr parse_answer(std::string_view normalized, const ParseOptions& options, WorkBudget& budget);

}  // namespace grpo::reward::math
