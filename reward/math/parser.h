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
  int max_depth = 100;  // nesting of brackets / commands / unary operators
  bool plain = false;   // the answer came from plain text: unknown words are words, not letters
};

// Parses a normalised answer (see normalize.h). Throws ParseError for input it cannot read and
// BudgetExceeded when `budget` runs out.
NodePtr parse_answer(std::string_view normalized, const ParseOptions& options, WorkBudget& budget);

// True for names the evaluator knows as functions (sin, log, sqrt, ...).
bool is_known_function(std::string_view name);

}  // namespace grpo::reward::math
