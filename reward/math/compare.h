// Mathematical equivalence of a predicted answer and a gold answer.
//
// Rules (gold first; the relation rules are asymmetric on purpose, as in Math-Verify):
// * Numbers: exact rationals compare exactly. When either side is written with a decimal point
//   (0.333333, 1.5e3) both are rounded to `float_rounding` decimal places, so 1/3 == 0.333333
//   but 1/2 != 0.52 (values that both round to 0 compare by significant digits instead).
// * Constant expressions (\sqrt{8}, 2\sqrt2, \pi/2, 3+4i): exact when rational, otherwise numeric
//   in long double with relative tolerance `rel_tol`; rationals past 128 bits (10^{100}+1,
//   2^{10^{10}}) compare by residues modulo three 61-bit primes (modular.h).
// * Expressions with variables: exact as rational functions where possible (x/7 + 2/7 ==
//   (x+2)/7); otherwise evaluated at 12 sample points (6 with positive variables, 6 of mixed
//   sign where only real values are compared, so x^{2/3} == \sqrt[3]{x}^2 but \sqrt{x^2} != x).
//   Points where either side is undefined are skipped; at least 3 must remain.
// * Percent: with allow_percent, 50\% matches 50 and 0.5 (a percent sign on one side only); two
//   percent values compare their numbers.
// * Assignments: "x = 2" vs "2" compares 2 with 2 (gold assignment, bare prediction, or any
//   prediction equation against a bare gold: its last right-hand side). Chains "x = 1+1 = 2"
//   reduce to their first and last parts. Two assignments to the same name compare values.
// * Equations: equal when lhs - rhs of both are proportional by a non-zero constant
//   (y = 2x+1 == 2x - y + 1 = 0). Inequalities: same strictness after flipping > to <, and
//   lhs - rhs proportional by a positive constant (x < 1 == -x > -1); chains link by link.
// * Relation vs set: a gold one-variable relation matches a predicted interval/union/set when
//   they agree at every endpoint, just beside it, between endpoints and far out (-2 <= x <= 7 ==
//   [-2, 7]). A gold set matches a predicted relation only with allow_set_relation_comp.
// * Sets \{1,2\} and bare lists "1, 2" / "2 or 1" are order-free (duplicates ignored); tuples
//   (1, 2) are ordered; a bare list against a tuple compares in order; (a, b) against an interval
//   is the open interval, so (1,2) != [1,2]. Intervals/unions compare piecewise after sorting and
//   merging. Matrices compare entrywise; a vector matches a tuple.
// * Text (\text{Evelyn}) compares case-insensitively with text or with the same letters.
// * strict = false: the prediction's variables are renamed to the gold's (f(x) == f(y)).
#pragma once
#include "reward/math/expr.h"

namespace grpo::reward::math {

struct CompareOptions {
  int float_rounding = 6;  // decimal places kept when a decimal literal is involved
  double rel_tol = 1e-12;  // relative tolerance of numeric comparisons of exact expressions
  bool allow_percent = true;
  bool strict = true;
  bool allow_set_relation_comp = false;
};

// `gold` and `pred` are prepared trees (simplify.h: prepare()).
bool equivalent(const NodePtr& gold, const NodePtr& pred, const CompareOptions& options, WorkBudget& budget);

}  // namespace grpo::reward::math
