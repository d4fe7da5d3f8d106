// Exact comparison of expressions as rational functions with rational coefficients.
//
// Symbols, \pi, e and undefined functions f(x) are free variables. Everything else that is not
// a polynomial operation (\sqrt{2}, \sin x, i, x^{1/2}) becomes an opaque atom keyed by its
// rendering: a zero difference still proves equality, but a non-zero one is then inconclusive
// (sin^2 x + cos^2 x - 1 is not zero as a polynomial in two atoms), and the caller falls back
// to numeric evaluation. Sizes are capped (terms, exponents); past a cap the answer is Unknown.
#pragma once
#include "reward/math/expr.h"

namespace grpo::reward::math {

enum class Verdict { Equal, NotEqual, Unknown };

// a == b as rational functions.
Verdict exact_equal(const Node& a, const Node& b, WorkBudget& budget);

// a == c * b for a non-zero rational constant c (returned in *factor when Equal).
Verdict exact_proportional(const Node& a, const Node& b, Rational* factor, WorkBudget& budget);

// The exact rational value of a constant expression (no symbols, no opaque atoms), if any.
std::optional<Rational> exact_value(const Node& n, WorkBudget& budget);

}  // namespace grpo::reward::math
