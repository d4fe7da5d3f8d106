// Structural rewriting of parsed answers: canonical form and answer preparation.
#pragma once
#include <vector>

#include "reward/math/expr.h"

namespace grpo::reward::math {

// Canonical form: nested Add/Mul flattened, exact constants folded (2+3 -> 5, \sqrt{4} -> 2),
// x^1 -> x, and the operands of Add/Mul sorted by their rendering, so equal sums and products
// render equally (the key of opaque sub-expressions such as f(x+1) or \sum ...).
NodePtr simplify(const NodePtr& n, WorkBudget& budget);

// a \pm b -> {a+b, a-b}. Lists and sets splice the alternatives of their elements; anything
// else yields one alternative per sign choice (at most 16).
std::vector<NodePtr> expand_alternatives(const NodePtr& n, WorkBudget& budget);

// Everything done to an answer before comparison:
//   \pm expansion (a top-level alternative set becomes a List),
//   x = 1/3 \approx 0.33 -> x = 1/3 (an approximation after an exact value is dropped),
//   "n = 1, 2, 3" -> n = {1, 2, 3},
//   matrix sums and products computed entrywise,
//   simplify().
NodePtr prepare(const NodePtr& n, WorkBudget& budget);

// A "name" that can be assigned: x, a_{3}, AB, f(x), |AB|, NO/BO, A:B, (p, q).
bool is_name(const Node& n);

// True when the tree contains a node of this kind.
bool contains_kind(const Node& n, Kind kind);

}  // namespace grpo::reward::math
