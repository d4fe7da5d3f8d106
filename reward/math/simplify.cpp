#include "reward/math/simplify.h"

#include <algorithm>
#include <cmath>

namespace grpo::reward::math {
namespace {

constexpr size_t kMaxAlternatives = 16;
constexpr int kMaxMatrixCells = 64;

NodePtr with_args(const Node& n, std::vector<NodePtr> args) {
  auto c = std::make_shared<Node>(n);
  c->args = std::move(args);
  return c;
}

bool is_exact_number(const Node& n) { return n.kind == Kind::Number && n.exact; }

// Exact square root of a non-negative integer, if it is a perfect square.
std::optional<int128> isqrt_exact(int128 v) {
  if (v < 0) return std::nullopt;
  auto r = static_cast<int128>(std::sqrt(static_cast<long double>(v)));
  for (int128 c = r > 2 ? r - 2 : 0; c <= r + 2; ++c)
    if (c * c == v) return c;
  return std::nullopt;
}

NodePtr fold_add(const std::vector<NodePtr>& args, WorkBudget& budget) {
  std::vector<NodePtr> flat;
  for (auto& a : args) {
    if (a->kind == Kind::Add)
      flat.insert(flat.end(), a->args.begin(), a->args.end());
    else
      flat.push_back(a);
  }
  budget.charge(static_cast<int64_t>(flat.size()));
  Rational sum(0);
  bool exact = true, decimal = false, any_number = false;
  long double approx = 0;
  std::vector<NodePtr> rest;
  for (auto& a : flat) {
    if (a->kind != Kind::Number) {
      rest.push_back(a);
      continue;
    }
    any_number = true;
    decimal = decimal || a->decimal;
    approx += a->approx;
    if (exact && a->exact) {
      auto s = add(sum, a->q);
      if (s)
        sum = *s;
      else
        exact = false;
    } else {
      exact = false;
    }
  }
  NodePtr number;
  if (any_number) number = exact ? make_number(sum, decimal) : make_float(approx, decimal);
  if (number && !(number->exact && number->q.is_zero() && !rest.empty() && !decimal)) rest.push_back(number);
  if (rest.empty()) return make_int(0);
  if (rest.size() == 1) return rest[0];
  std::stable_sort(rest.begin(), rest.end(), [](const NodePtr& a, const NodePtr& b) {
    if ((a->kind == Kind::Number) != (b->kind == Kind::Number)) return b->kind == Kind::Number;
    return to_string(*a) < to_string(*b);
  });
  return make_node(Kind::Add, std::move(rest));
}

NodePtr fold_mul(const std::vector<NodePtr>& args, WorkBudget& budget) {
  std::vector<NodePtr> flat;
  for (auto& a : args) {
    if (a->kind == Kind::Mul)
      flat.insert(flat.end(), a->args.begin(), a->args.end());
    else
      flat.push_back(a);
  }
  budget.charge(static_cast<int64_t>(flat.size()));
  Rational prod(1);
  bool exact = true, decimal = false, any_number = false;
  long double approx = 1;
  std::vector<NodePtr> rest;
  bool has_matrix = false;
  for (auto& a : flat) {
    if (a->kind == Kind::Matrix) has_matrix = true;
    if (a->kind != Kind::Number) {
      rest.push_back(a);
      continue;
    }
    any_number = true;
    decimal = decimal || a->decimal;
    approx *= a->approx;
    if (exact && a->exact) {
      auto p = mul(prod, a->q);
      if (p)
        prod = *p;
      else
        exact = false;
    } else {
      exact = false;
    }
  }
  NodePtr number;
  if (any_number) number = exact ? make_number(prod, decimal) : make_float(approx, decimal);
  bool zero = number && number->exact && number->q.is_zero();
  bool has_inf = std::any_of(rest.begin(), rest.end(),
                             [](const NodePtr& a) { return a->kind == Kind::Constant && a->name == "inf"; });
  if (zero && !has_inf && !has_matrix) return number;
  bool one = number && number->exact && number->q == Rational(1) && !decimal;
  if (rest.empty()) return number ? number : make_int(1);
  if (!one && number) rest.insert(rest.begin(), number);
  if (rest.size() == 1) return rest[0];
  if (!has_matrix) {  // matrix products do not commute
    std::stable_sort(rest.begin() + (number && !one ? 1 : 0), rest.end(),
                     [](const NodePtr& a, const NodePtr& b) { return to_string(*a) < to_string(*b); });
  }
  return make_node(Kind::Mul, std::move(rest));
}

NodePtr fold_pow(const Node& n, std::vector<NodePtr> args) {
  const NodePtr& base = args[0];
  const NodePtr& e = args[1];
  if (is_exact_number(*e) && e->q == Rational(1)) return base;
  if (is_exact_number(*base) && is_exact_number(*e)) {
    bool decimal = base->decimal || e->decimal;
    if (e->q.is_integer() && e->q.num() >= -64 && e->q.num() <= 64) {
      if (auto r = pow(base->q, static_cast<int64_t>(e->q.num()))) return make_number(*r, decimal);
    }
    // \sqrt of a perfect-square rational
    if (e->q == *Rational::make(1, 2) && base->q.sign() >= 0) {
      auto a = isqrt_exact(base->q.num());
      auto b = isqrt_exact(base->q.den());
      if (a && b) return make_number(*Rational::make(*a, *b), decimal);
    }
  }
  return with_args(n, std::move(args));
}

bool has_plus_minus(const Node& n) { return contains_kind(n, Kind::PlusMinus); }

// All sign choices of a node's arguments (cartesian product, capped).
std::vector<std::vector<NodePtr>> arg_alternatives(const Node& n, WorkBudget& budget) {
  std::vector<std::vector<NodePtr>> combos{{}};
  for (const auto& a : n.args) {
    std::vector<NodePtr> alts = expand_alternatives(a, budget);
    std::vector<std::vector<NodePtr>> next;
    for (const auto& c : combos) {
      for (const auto& alt : alts) {
        if (next.size() >= kMaxAlternatives) break;
        auto d = c;
        d.push_back(alt);
        next.push_back(std::move(d));
      }
    }
    combos = std::move(next);
  }
  return combos;
}

NodePtr truncate_approximations(const Node& n) {
  bool any_eq = std::any_of(n.rel_ops.begin(), n.rel_ops.end(), [](RelOp o) { return o == RelOp::Eq; });
  bool all_approx_or_eq =
      std::all_of(n.rel_ops.begin(), n.rel_ops.end(), [](RelOp o) { return o == RelOp::Eq || o == RelOp::Approx; });
  if (!all_approx_or_eq) return nullptr;
  std::vector<NodePtr> parts{n.args[0]};
  std::vector<RelOp> ops;
  for (size_t i = 0; i < n.rel_ops.size(); ++i) {
    if (n.rel_ops[i] == RelOp::Approx && any_eq) break;  // x = 1/3 \approx 0.33: drop the estimate
    ops.push_back(RelOp::Eq);
    parts.push_back(n.args[i + 1]);
  }
  if (ops.empty()) return nullptr;
  return make_relation(std::move(parts), std::move(ops));
}

bool is_single_assignment(const Node& n) {
  return n.kind == Kind::Relation && n.rel_ops.size() == 1 && n.rel_ops[0] == RelOp::Eq && is_name(*n.args[0]);
}

// Matrix sums, scalar multiples and products, computed entrywise.
NodePtr fold_matrices(const NodePtr& n, WorkBudget& budget) {
  std::vector<NodePtr> args;
  args.reserve(n->args.size());
  for (const auto& a : n->args) args.push_back(fold_matrices(a, budget));
  if (n->kind == Kind::Add && args.size() > 1 && std::all_of(args.begin(), args.end(), [&](const NodePtr& a) {
        return a->kind == Kind::Matrix && a->rows == args[0]->rows && a->cols == args[0]->cols;
      })) {
    std::vector<NodePtr> cells;
    for (size_t k = 0; k < args[0]->args.size(); ++k) {
      std::vector<NodePtr> terms;
      terms.reserve(args.size());
      for (const auto& m : args) terms.push_back(m->args[k]);
      cells.push_back(make_node(Kind::Add, std::move(terms)));
    }
    budget.charge(static_cast<int64_t>(cells.size()));
    return make_matrix(args[0]->rows, args[0]->cols, std::move(cells));
  }
  if (n->kind == Kind::Mul &&
      std::any_of(args.begin(), args.end(), [](const NodePtr& a) { return a->kind == Kind::Matrix; })) {
    std::vector<NodePtr> scalars;
    NodePtr acc;
    for (const auto& a : args) {
      if (a->kind != Kind::Matrix) {
        scalars.push_back(a);
        continue;
      }
      if (!acc) {
        acc = a;
        continue;
      }
      if (acc->cols != a->rows || acc->rows * a->cols > kMaxMatrixCells) return with_args(*n, args);
      std::vector<NodePtr> cells;
      for (int r = 0; r < acc->rows; ++r)
        for (int c = 0; c < a->cols; ++c) {
          std::vector<NodePtr> terms;
          terms.reserve(static_cast<size_t>(acc->cols));
          for (int k = 0; k < acc->cols; ++k)
            terms.push_back(make_node(
                Kind::Mul, {acc->args[static_cast<size_t>(r) * static_cast<size_t>(acc->cols) + static_cast<size_t>(k)],
                            a->args[static_cast<size_t>(k) * static_cast<size_t>(a->cols) + static_cast<size_t>(c)]}));
          budget.charge(static_cast<int64_t>(terms.size()));
          cells.push_back(make_node(Kind::Add, std::move(terms)));
        }
      acc = make_matrix(acc->rows, a->cols, std::move(cells));
    }
    if (!scalars.empty()) {
      std::vector<NodePtr> cells;
      for (const auto& e : acc->args) {
        std::vector<NodePtr> f = scalars;
        f.push_back(e);
        cells.push_back(make_node(Kind::Mul, std::move(f)));
      }
      acc = make_matrix(acc->rows, acc->cols, std::move(cells));
    }
    return acc;
  }
  return with_args(*n, std::move(args));
}

NodePtr prepare_rec(const NodePtr& n, WorkBudget& budget) {
  budget.charge();
  std::vector<NodePtr> args;
  args.reserve(n->args.size());
  for (const auto& a : n->args) args.push_back(prepare_rec(a, budget));
  NodePtr out = with_args(*n, std::move(args));
  if (out->kind == Kind::Relation) {
    if (NodePtr t = truncate_approximations(*out)) out = t;
  }
  if (out->kind == Kind::List && out->args.size() > 1 && is_single_assignment(*out->args[0]) &&
      std::none_of(out->args.begin() + 1, out->args.end(),
                   [](const NodePtr& a) { return a->kind == Kind::Relation; })) {
    std::vector<NodePtr> values{out->args[0]->args[1]};
    values.insert(values.end(), out->args.begin() + 1, out->args.end());
    out = make_relation({out->args[0]->args[0], make_node(Kind::List, std::move(values))}, {RelOp::Eq});
  }
  return out;
}

}  // namespace

bool contains_kind(const Node& n, Kind kind) {
  if (n.kind == kind) return true;
  return std::any_of(n.args.begin(), n.args.end(), [&](const NodePtr& a) { return contains_kind(*a, kind); });
}

bool is_name(const Node& n) {
  switch (n.kind) {
    case Kind::Symbol: return true;
    case Kind::Constant: return n.name == "e" || n.name == "i";
    case Kind::Mul:
    case Kind::Ratio:
    case Kind::Tuple: return std::all_of(n.args.begin(), n.args.end(), [](const NodePtr& a) { return is_name(*a); });
    case Kind::Pow:
      return is_name(*n.args[0]) && n.args[1]->kind == Kind::Number && n.args[1]->exact && n.args[1]->q == Rational(-1);
    case Kind::Func: return n.undefined_function || (n.name == "abs" && is_name(*n.args[0]));
    default: return false;
  }
}

NodePtr simplify(const NodePtr& n, WorkBudget& budget) {
  budget.charge();
  std::vector<NodePtr> args;
  args.reserve(n->args.size());
  for (const auto& a : n->args) args.push_back(simplify(a, budget));
  switch (n->kind) {
    case Kind::Add: return fold_add(args, budget);
    case Kind::Mul: return fold_mul(args, budget);
    case Kind::Pow: return fold_pow(*n, std::move(args));
    default: return n->args.empty() ? n : with_args(*n, std::move(args));
  }
}

std::vector<NodePtr> expand_alternatives(const NodePtr& n, WorkBudget& budget) {
  budget.charge();
  if (!has_plus_minus(*n)) return {n};
  if (n->kind == Kind::PlusMinus) {
    std::vector<NodePtr> out;
    for (const auto& a : expand_alternatives(n->args[0], budget))
      for (const auto& b : expand_alternatives(n->args[1], budget)) {
        if (out.size() + 2 > kMaxAlternatives) break;
        bool zero = a->kind == Kind::Number && a->exact && a->q.is_zero();
        out.push_back(zero ? b : make_node(Kind::Add, {a, b}));
        out.push_back(zero ? make_neg(b) : make_sub(a, b));
      }
    return out;
  }
  if (n->kind == Kind::List || n->kind == Kind::Set) {
    std::vector<NodePtr> elems;
    for (const auto& a : n->args)
      for (auto& alt : expand_alternatives(a, budget)) elems.push_back(std::move(alt));
    return {with_args(*n, std::move(elems))};
  }
  if (n->kind == Kind::Tuple || n->kind == Kind::Interval || n->kind == Kind::Matrix) return {n};
  std::vector<NodePtr> out;
  for (auto& combo : arg_alternatives(*n, budget)) out.push_back(with_args(*n, std::move(combo)));
  return out;
}

NodePtr prepare(const NodePtr& n, WorkBudget& budget) {
  std::vector<NodePtr> alts = expand_alternatives(n, budget);
  NodePtr top = alts.size() == 1 ? alts[0] : make_node(Kind::List, std::move(alts));
  top = prepare_rec(top, budget);
  top = fold_matrices(top, budget);
  return simplify(top, budget);
}

}  // namespace grpo::reward::math
