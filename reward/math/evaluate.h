// Numeric evaluation of scalar expressions in complex long double.
//
// Free symbols (and opaque leaves such as f(x) or \sum ...) take pseudo-random values derived from
// a hash of their name and the sample point, so the same name gets the same value on both sides
// of a comparison without any shared state (thread-safe, deterministic).
#pragma once
#include <complex>
#include <map>
#include <set>
#include <string>

#include "reward/math/expr.h"

namespace grpo::reward::math {

using Complex = std::complex<long double>;

// A plain value; `bindings` (optional) is borrowed, read only, and must outlive the evaluate() calls.
struct SamplePoint {
  uint64_t seed = 0;
  bool positive = true;                                      // symbols in [0.5, 2.5]; otherwise in [-3, 3] away from 0
  const std::map<std::string, Complex>* bindings = nullptr;  // fixed values by leaf key
};

// NaN (real part) for anything that is not a scalar (sets, relations, text) or undefined.
Complex evaluate(const Node& n, const SamplePoint& point, WorkBudget& budget);

// Key under which a leaf is sampled: the symbol name, or the rendering of an opaque node.
std::string leaf_key(const Node& n);
// True for leaves that take sampled values (symbols, undefined functions, \sum ...).
bool is_sampled_leaf(const Node& n);
// The sampled leaves of a tree, by key.
void collect_leaves(const Node& n, std::set<std::string>& out);
// Tree mentions a decimal literal (0.5, 1e-3): comparisons then use float rounding.
bool has_decimal(const Node& n);

}  // namespace grpo::reward::math
