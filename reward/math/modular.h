// Exact comparison of rational constants too large for 128 bits, by residues modulo primes.
//
// 10^{100} vs 10^{100}+1 or 2^{10^{10}} vs 4^{5\cdot 10^9} cannot be decided in long double and
// overflow the exact rationals; their residues modulo three ~2^61 primes can be computed in
// O(size + log exponent). Different residues prove the values differ; equal residues for all
// primes make equality overwhelmingly likely (the caller also checks the numeric values).
#pragma once
#include "reward/math/expr.h"
#include "reward/math/polynomial.h"

namespace grpo::reward::math {

// Equal / NotEqual when both sides are rational constants built from integer literals, + - * /
// and integer powers; Unknown otherwise (symbols, radicals, decimals, a denominator that is 0 mod
// one of the primes, ...).
Verdict modular_equal(const Node& a, const Node& b, WorkBudget& budget);

}  // namespace grpo::reward::math
