#include "reward/math/compare.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "reward/math/evaluate.h"
#include "reward/math/modular.h"
#include "reward/math/polynomial.h"
#include "reward/math/simplify.h"

namespace grpo::reward::math {
namespace {

constexpr int kSamples = 12;  // sample points for identities (half with positive variables)
constexpr int kMinValidSamples = 3;
constexpr size_t kMaxElements = 64;  // elements of a set/list compared pairwise
constexpr long double kAbsFloor = 1e-13L;

bool finite(const Complex& z) { return std::isfinite(z.real()) && std::isfinite(z.imag()); }

bool is_equation(const Node& n) {
  return n.kind == Kind::Relation &&
         std::all_of(n.rel_ops.begin(), n.rel_ops.end(), [](RelOp o) { return o == RelOp::Eq; });
}

bool is_assignment(const Node& n) { return is_equation(n) && (n.args.size() >= 3 || is_name(*n.args[0])); }

NodePtr first_last(const NodePtr& rel) {
  if (rel->args.size() == 2) return rel;
  return make_relation({rel->args.front(), rel->args.back()}, {RelOp::Eq});
}

// "x \in S" -> S
NodePtr unwrap_membership(const NodePtr& n) {
  if (n->kind == Kind::Relation && n->rel_ops.size() == 1 && n->rel_ops[0] == RelOp::In && is_name(*n->args[0]))
    return n->args[1];
  return n;
}

bool is_scalar(const Node& n) {
  switch (n.kind) {
    case Kind::Tuple:
    case Kind::List:
    case Kind::Set:
    case Kind::Interval:
    case Kind::Union:
    case Kind::Matrix:
    case Kind::Relation:
    case Kind::Text: return false;
    default: return true;
  }
}

bool is_set_expression(const Node& n) {
  return n.kind == Kind::Interval || n.kind == Kind::Union || n.kind == Kind::Set ||
         (n.kind == Kind::Tuple && n.args.size() == 2);
}

bool rounded_equal(long double a, long double b, int digits) {
  if (a == b) return true;
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  long double scale = std::pow(10.0L, digits);
  long double sa = a * scale, sb = b * scale;
  if (std::fabs(sa) > 1e17L || std::fabs(sb) > 1e17L)
    return std::fabs(a - b) <= 1e-15L * std::max(std::fabs(a), std::fabs(b));
  long double ra = std::nearbyint(sa), rb = std::nearbyint(sb);
  if (ra != rb) return false;
  if (ra != 0 || a == 0 || b == 0) return true;
  // Both round to zero: compare significant digits so 1.5e-8 != 1.6e-8.
  long double m = std::max(std::fabs(a), std::fabs(b));
  long double e = std::pow(10.0L, digits - 1 - std::floor(std::log10(m)));
  return std::nearbyint(a * e) == std::nearbyint(b * e);
}

bool close(const Complex& a, const Complex& b, long double tol) {
  long double diff = std::abs(a - b);
  return diff <= tol * std::max(std::abs(a), std::abs(b)) + kAbsFloor;
}

NodePtr with_args(const Node& n, std::vector<NodePtr> args) {
  auto c = std::make_shared<Node>(n);
  c->args = std::move(args);
  return c;
}

void collect_symbols(const Node& n, std::set<std::string>& out) {
  if (n.kind == Kind::Symbol && n.name != "...") out.insert(n.name);
  for (const auto& a : n.args) collect_symbols(*a, out);
}

NodePtr rename(const NodePtr& n, const std::map<std::string, std::string>& names) {
  if (n->kind == Kind::Symbol) {
    auto it = names.find(n->name);
    return it == names.end() ? n : make_symbol(it->second);
  }
  if (n->args.empty()) return n;
  std::vector<NodePtr> args;
  for (const auto& a : n->args) args.push_back(rename(a, names));
  return with_args(*n, std::move(args));
}

// Letters of a text-like answer: \text{Evelyn}, Evelyn (E*v*e*l*y*n), E. Sorted, lower-case,
// since products are stored in canonical order.
std::optional<std::string> letters_of(const Node& n) {
  auto norm = [](const std::string& s) {
    std::string out;
    for (char c : s)
      if (std::isalnum(static_cast<unsigned char>(c)))
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
  };
  switch (n.kind) {
    case Kind::Text: return norm(n.name);
    case Kind::Symbol:
      if (n.name.size() == 1) return norm(n.name);
      return std::nullopt;
    case Kind::Constant:
      if (n.name == "e" || n.name == "i") return n.name;
      return std::nullopt;
    case Kind::Pow: {
      auto base = letters_of(*n.args[0]);
      const Node& e = *n.args[1];
      if (!base || e.kind != Kind::Number || !e.exact || !e.q.is_integer() || e.q.num() < 1 || e.q.num() > 16)
        return std::nullopt;
      std::string s;
      for (int k = 0; k < static_cast<int>(e.q.num()); ++k) s += *base;
      return s;
    }
    case Kind::Mul: {
      std::string s;
      for (const auto& a : n.args) {
        auto l = letters_of(*a);
        if (!l) return std::nullopt;
        s += *l;
      }
      return s;
    }
    default: return std::nullopt;
  }
}

struct Piece {
  bool point = false;
  NodePtr lo, hi;  // point: lo only
  bool lc = true, rc = true;
  long double vlo = 0, vhi = 0;
};

class Comparer {
 public:
  Comparer(const CompareOptions& o, WorkBudget& b) : opts_(o), budget_(b) {}

  bool equal(NodePtr g, NodePtr p) {
    budget_.charge();
    g = unwrap_membership(g);
    p = unwrap_membership(p);
    bool g_eq = is_equation(*g), p_eq = is_equation(*p);
    bool g_as = is_assignment(*g), p_as = is_assignment(*p);
    if (g_as) g = first_last(g);
    if (p_as) p = first_last(p);
    if (p_eq && !g_eq)
      p = p->args.back();  // 1/3 vs k = 1/3
    else if (g_as && !p_eq)
      g = g->args.back();  // x = 11 vs 11
    bool g_rel = g->kind == Kind::Relation, p_rel = p->kind == Kind::Relation;
    if (g_rel && p_rel) return relations_equal(g, p);
    if (g_rel) return is_set_expression(*p) && relation_matches_set(*g, *p);
    if (p_rel) return opts_.allow_set_relation_comp && is_set_expression(*g) && relation_matches_set(*p, *g);
    return values_equal(g, p);
  }

 private:
  bool values_equal(const NodePtr& g, const NodePtr& p) {
    if (opts_.allow_percent && (g->kind == Kind::Percent || p->kind == Kind::Percent)) {
      if (g->kind == Kind::Percent && p->kind == Kind::Percent) return equal(g->args[0], p->args[0]);
      bool gold_pct = g->kind == Kind::Percent;
      const NodePtr& pct = gold_pct ? g : p;
      NodePtr inner = pct->args[0];
      NodePtr fraction = simplify(make_div(inner, make_int(100)), budget_);
      for (const NodePtr& c : {inner, fraction}) {
        if (gold_pct ? equal(c, p) : equal(g, c)) return true;
      }
      return false;
    }
    if (g->kind == Kind::Text || p->kind == Kind::Text) {
      auto a = letters_of(*g), b = letters_of(*p);
      if (!a || !b || a->empty()) return false;
      std::string sa = *a, sb = *b;
      std::sort(sa.begin(), sa.end());
      std::sort(sb.begin(), sb.end());
      return sa == sb;
    }
    if (!is_scalar(*g) || !is_scalar(*p)) return structured_equal(g, p);
    return scalar_equal(g, p);
  }

  bool ordered_equal(const Node& g, const Node& p) {
    if (g.args.size() != p.args.size()) return false;
    for (size_t i = 0; i < g.args.size(); ++i)
      if (!equal(g.args[i], p.args[i])) return false;
    return true;
  }

  std::vector<NodePtr> dedupe(const std::vector<NodePtr>& xs) {
    std::vector<NodePtr> out;
    for (const auto& x : xs) {
      bool dup = false;
      for (const auto& y : out)
        if (to_string(*x) == to_string(*y) || equal(y, x)) {
          dup = true;
          break;
        }
      if (!dup) out.push_back(x);
    }
    return out;
  }

  // Order-free comparison: a perfect matching between the distinct elements.
  bool unordered_equal(const Node& g, const Node& p) {
    if (g.args.size() > kMaxElements || p.args.size() > kMaxElements) return false;
    std::vector<NodePtr> a = dedupe(g.args), b = dedupe(p.args);
    if (a.size() != b.size()) return false;
    size_t n = a.size();
    std::vector<std::vector<char>> eq(n, std::vector<char>(n, 0));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) eq[i][j] = equal(a[i], b[j]) ? 1 : 0;
    std::vector<int> match(n, -1);
    std::function<bool(size_t, std::vector<char>&)> augment = [&](size_t i, std::vector<char>& seen) {
      for (size_t j = 0; j < n; ++j) {
        if (!eq[i][j] || seen[j]) continue;
        seen[j] = 1;
        if (match[j] < 0 || augment(static_cast<size_t>(match[j]), seen)) {
          match[j] = static_cast<int>(i);
          return true;
        }
      }
      return false;
    };
    for (size_t i = 0; i < n; ++i) {
      std::vector<char> seen(n, 0);
      if (!augment(i, seen)) return false;
    }
    return true;
  }

  bool structured_equal(const NodePtr& g, const NodePtr& p) {
    Kind gk = g->kind, pk = p->kind;
    if (gk == Kind::Matrix || pk == Kind::Matrix) {
      if (gk == Kind::Matrix && pk == Kind::Matrix)
        return g->rows == p->rows && g->cols == p->cols && ordered_equal(*g, *p);
      const NodePtr& m = gk == Kind::Matrix ? g : p;
      const NodePtr& t = gk == Kind::Matrix ? p : g;
      if (t->kind == Kind::Tuple && (m->rows == 1 || m->cols == 1) && m->args.size() == t->args.size())
        return ordered_equal(*g, *p);
      return false;
    }
    bool g_int = gk == Kind::Interval || gk == Kind::Union;
    bool p_int = pk == Kind::Interval || pk == Kind::Union;
    if (g_int || p_int) {
      if (is_set_expression(*g) && is_set_expression(*p)) return set_expressions_equal(*g, *p);
      return false;
    }
    bool g_unordered = gk == Kind::List || gk == Kind::Set;
    bool p_unordered = pk == Kind::List || pk == Kind::Set;
    if (gk == Kind::Tuple && pk == Kind::Tuple) return ordered_equal(*g, *p);
    if ((gk == Kind::Tuple && pk == Kind::List) || (gk == Kind::List && pk == Kind::Tuple))
      return ordered_equal(*g, *p);
    if (g_unordered && p_unordered) return unordered_equal(*g, *p);
    // A collection of one distinct value against a scalar: "\{5\}" == 5, "15 3/4 or 63/4" == 63/4.
    if (g_unordered && is_scalar(*p) && g->args.size() <= kMaxElements) {
      std::vector<NodePtr> d = dedupe(g->args);
      return d.size() == 1 && equal(d[0], p);
    }
    if (p_unordered && is_scalar(*g) && p->args.size() <= kMaxElements) {
      std::vector<NodePtr> d = dedupe(p->args);
      return d.size() == 1 && equal(g, d[0]);
    }
    return false;
  }

  // --- intervals, unions, finite sets -------------------------------------------------------

  bool real_value(const Node& n, long double* v) {
    Complex z = evaluate(n, SamplePoint{}, budget_);
    if (std::isnan(z.real()) || z.imag() != 0) return false;
    std::set<std::string> leaves;
    collect_leaves(n, leaves);
    if (!leaves.empty()) return false;
    *v = z.real();
    return true;
  }

  bool pieces_of(const Node& n, std::vector<Piece>& out) {
    budget_.charge();
    switch (n.kind) {
      case Kind::Union:
        for (const auto& a : n.args)
          if (!pieces_of(*a, out)) return false;
        return true;
      case Kind::Interval:
      case Kind::Tuple: {
        if (n.args.size() != 2) return false;
        Piece pc;
        pc.lo = n.args[0];
        pc.hi = n.args[1];
        pc.lc = n.kind == Kind::Interval && n.left_closed;
        pc.rc = n.kind == Kind::Interval && n.right_closed;
        out.push_back(pc);
        return true;
      }
      case Kind::Set:
      case Kind::List:
        for (const auto& a : n.args) {
          if (!is_scalar(*a)) return false;
          Piece pc;
          pc.point = true;
          pc.lo = a;
          out.push_back(pc);
        }
        return true;
      default:
        if (!is_scalar(n)) return false;
        {
          Piece pc;
          pc.point = true;
          pc.lo = std::make_shared<Node>(n);
          out.push_back(pc);
        }
        return true;
    }
  }

  // Sorted, merged pieces with numeric endpoints; false if an endpoint is not a real constant.
  bool numeric_pieces(const Node& n, std::vector<Piece>& out) {
    if (!pieces_of(n, out)) return false;
    for (auto& pc : out) {
      if (!real_value(*pc.lo, &pc.vlo)) return false;
      if (pc.point)
        pc.vhi = pc.vlo;
      else if (!real_value(*pc.hi, &pc.vhi))
        return false;
    }
    std::sort(out.begin(), out.end(),
              [](const Piece& a, const Piece& b) { return a.vlo != b.vlo ? a.vlo < b.vlo : a.vhi < b.vhi; });
    auto same = [](long double a, long double b) {
      return a == b || std::fabs(a - b) <= 1e-12L * std::max(std::fabs(a), std::fabs(b));
    };
    std::vector<Piece> merged;
    for (const auto& pc : out) {
      if (!merged.empty()) {
        Piece& last = merged.back();
        bool overlaps = pc.vlo < last.vhi && !same(pc.vlo, last.vhi);
        bool touches = same(pc.vlo, last.vhi) && (last.rc || pc.lc || (pc.point) || (last.point && pc.lc));
        if (last.point && pc.point && same(last.vlo, pc.vlo)) continue;
        if (!last.point && pc.point &&
            (overlaps || (same(pc.vlo, last.vhi) && last.rc) || (same(pc.vlo, last.vlo) && last.lc))) {
          continue;  // a point inside a closed end or inside the interval
        }
        if (!last.point && pc.point && same(pc.vlo, last.vhi)) {
          last.rc = true;
          continue;
        }
        if (last.point && !pc.point && same(last.vlo, pc.vlo)) {
          Piece p2 = pc;
          p2.lc = true;
          last = p2;
          continue;
        }
        if (!last.point && !pc.point && (overlaps || touches)) {
          if (pc.vhi > last.vhi || (same(pc.vhi, last.vhi) && pc.rc)) {
            bool rc = same(pc.vhi, last.vhi) ? (pc.rc || last.rc) : pc.rc;
            last.hi = pc.hi;
            last.vhi = pc.vhi;
            last.rc = rc;
          }
          continue;
        }
      }
      merged.push_back(pc);
    }
    out = std::move(merged);
    return true;
  }

  bool set_expressions_equal(const Node& g, const Node& p) {
    std::vector<Piece> a, b;
    if (numeric_pieces(g, a) && numeric_pieces(p, b)) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].point != b[i].point) return false;
        if (!equal(a[i].lo, b[i].lo)) return false;
        if (a[i].point) continue;
        if (a[i].lc != b[i].lc || a[i].rc != b[i].rc) return false;
        if (!equal(a[i].hi, b[i].hi)) return false;
      }
      return true;
    }
    // Symbolic endpoints: compare the pieces as an unordered collection.
    a.clear();
    b.clear();
    if (!pieces_of(g, a) || !pieces_of(p, b) || a.size() != b.size() || a.size() > kMaxElements) return false;
    std::vector<char> used(b.size(), 0);
    for (const auto& x : a) {
      bool found = false;
      for (size_t j = 0; j < b.size() && !found; ++j) {
        const Piece& y = b[j];
        if (used[j] || x.point != y.point) continue;
        if (!x.point && (x.lc != y.lc || x.rc != y.rc)) continue;
        if (!equal(x.lo, y.lo) || (!x.point && !equal(x.hi, y.hi))) continue;
        used[j] = 1;
        found = true;
      }
      if (!found) return false;
    }
    return true;
  }

  // --- relations --------------------------------------------------------------------------

  static RelOp flip(RelOp op) {
    switch (op) {
      case RelOp::Lt: return RelOp::Gt;
      case RelOp::Gt: return RelOp::Lt;
      case RelOp::Le: return RelOp::Ge;
      case RelOp::Ge: return RelOp::Le;
      default: return op;
    }
  }

  // a > b > c  ->  c < b < a
  static NodePtr forward(const NodePtr& r) {
    bool all_greater =
        std::all_of(r->rel_ops.begin(), r->rel_ops.end(), [](RelOp o) { return o == RelOp::Gt || o == RelOp::Ge; });
    if (!all_greater) return r;
    std::vector<NodePtr> parts(r->args.rbegin(), r->args.rend());
    std::vector<RelOp> ops;
    for (auto it = r->rel_ops.rbegin(); it != r->rel_ops.rend(); ++it) ops.push_back(flip(*it));
    return make_relation(std::move(parts), std::move(ops));
  }

  bool relations_equal(NodePtr g, NodePtr p) {
    if (is_equation(*g) && is_equation(*p)) {
      g = first_last(g);
      p = first_last(p);
      const NodePtr &gl = g->args[0], &gr = g->args[1], &pl = p->args[0], &pr = p->args[1];
      if (is_name(*gl) && is_name(*pl) && to_string(*gl) == to_string(*pl)) return equal(gr, pr);
      if (is_scalar(*gl) && is_scalar(*gr) && is_scalar(*pl) && is_scalar(*pr))
        return proportional(make_sub(gl, gr), make_sub(pl, pr), false);
      return equal(gl, pl) && equal(gr, pr);
    }
    g = forward(g);
    p = forward(p);
    if (g->rel_ops.size() != p->rel_ops.size()) return false;
    for (size_t i = 0; i < g->rel_ops.size(); ++i) {
      if (!link_equal(g->args[i], g->rel_ops[i], g->args[i + 1], p->args[i], p->rel_ops[i], p->args[i + 1]))
        return false;
    }
    return true;
  }

  // One link a op b: lhs - rhs in the direction of <, compared up to a constant factor.
  bool link_equal(const NodePtr& a, RelOp op, const NodePtr& b, const NodePtr& c, RelOp op2, const NodePtr& d) {
    auto norm = [](const NodePtr& x, RelOp o, const NodePtr& y, NodePtr* f) {
      switch (o) {
        case RelOp::Gt: *f = make_sub(y, x); return RelOp::Lt;
        case RelOp::Ge: *f = make_sub(y, x); return RelOp::Le;
        default: *f = make_sub(x, y); return o;
      }
    };
    if (!is_scalar(*a) || !is_scalar(*b) || !is_scalar(*c) || !is_scalar(*d)) return false;
    NodePtr f, h;
    RelOp k1 = norm(a, op, b, &f), k2 = norm(c, op2, d, &h);
    if (k1 != k2 || k1 == RelOp::In) return false;
    bool positive = k1 == RelOp::Lt || k1 == RelOp::Le;
    return proportional(f, h, positive);
  }

  // f == c * h for a constant c != 0 (c > 0 when `positive`).
  bool proportional(const NodePtr& f0, const NodePtr& h0, bool positive) {
    NodePtr f = simplify(f0, budget_), h = simplify(h0, budget_);
    Rational c;
    Verdict v = exact_proportional(*f, *h, &c, budget_);
    if (v == Verdict::Equal) return !positive || c.sign() > 0;
    bool dec = has_decimal(*f) || has_decimal(*h);
    if (v == Verdict::NotEqual && !dec) return false;
    long double tol = dec ? std::pow(10.0L, -opts_.float_rounding) : static_cast<long double>(opts_.rel_tol);
    std::optional<Complex> ratio;
    int valid = 0;
    for (int k = 0; k < kSamples; ++k) {
      SamplePoint pt{static_cast<uint64_t>(k + 1), k < kSamples / 2, nullptr};
      Complex vf = evaluate(*f, pt, budget_), vh = evaluate(*h, pt, budget_);
      if (!finite(vf) || !finite(vh)) continue;
      if (std::abs(vh) < kAbsFloor) {
        if (std::abs(vf) < kAbsFloor) continue;
        return false;
      }
      Complex r = vf / vh;
      if (!ratio)
        ratio = r;
      else if (!close(*ratio, r, tol))
        return false;
      ++valid;
    }
    if (!ratio || valid < kMinValidSamples) return false;
    if (std::fabs(ratio->imag()) > 1e-9L * std::abs(*ratio) || std::abs(*ratio) < kAbsFloor) return false;
    return !positive || ratio->real() > 0;
  }

  // Truth of a relation chain at a binding, with a small tolerance for equality at endpoints.
  bool holds(const Node& rel, const SamplePoint& pt) {
    for (size_t i = 0; i < rel.rel_ops.size(); ++i) {
      Complex a = evaluate(*rel.args[i], pt, budget_), b = evaluate(*rel.args[i + 1], pt, budget_);
      if (!finite(a) || !finite(b)) return false;
      if (std::fabs(a.imag()) > 1e-12L || std::fabs(b.imag()) > 1e-12L) return false;
      long double d = a.real() - b.real();
      long double tol = 1e-9L * std::max({1.0L, std::fabs(a.real()), std::fabs(b.real())});
      bool ok;
      switch (rel.rel_ops[i]) {
        case RelOp::Lt: ok = d < -tol; break;
        case RelOp::Le: ok = d <= tol; break;
        case RelOp::Gt: ok = d > tol; break;
        case RelOp::Ge: ok = d >= -tol; break;
        case RelOp::Eq:
        case RelOp::Approx: ok = std::fabs(d) <= tol; break;
        case RelOp::Ne: ok = std::fabs(d) > tol; break;
        default: ok = false;
      }
      if (!ok) return false;
    }
    return true;
  }

  static bool contains(const std::vector<Piece>& pieces, long double t) {
    for (const auto& pc : pieces) {
      long double scale = 1.0L;
      for (long double v : {pc.vlo, pc.vhi})
        if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
      long double tol = 1e-9L * scale;
      if (pc.point) {
        if (std::fabs(t - pc.vlo) <= tol) return true;
        continue;
      }
      bool above = pc.lc ? t >= pc.vlo - tol : t > pc.vlo + tol;
      bool below = pc.rc ? t <= pc.vhi + tol : t < pc.vhi - tol;
      if (std::isinf(pc.vlo) && pc.vlo < 0) above = true;
      if (std::isinf(pc.vhi) && pc.vhi > 0) below = true;
      if (above && below) return true;
    }
    return false;
  }

  // A one-variable relation against an explicit set: they must agree on a set of probe points.
  bool relation_matches_set(const Node& rel, const Node& set) {
    std::set<std::string> leaves;
    collect_leaves(rel, leaves);
    if (leaves.size() != 1) return false;
    std::vector<Piece> pieces;
    if (!numeric_pieces(set, pieces)) return false;
    std::vector<long double> ends;
    for (const auto& pc : pieces) {
      for (long double v : {pc.vlo, pc.vhi})
        if (std::isfinite(v)) ends.push_back(v);
    }
    std::sort(ends.begin(), ends.end());
    std::vector<long double> probes = {-1000.0L, -7.3L, -1.1L, -0.37L, 0.0L, 0.41L, 1.3L, 2.9L, 8.7L, 1000.0L};
    for (size_t i = 0; i < ends.size(); ++i) {
      long double e = ends[i], delta = 1e-6L * std::max(1.0L, std::fabs(e));
      probes.insert(probes.end(), {e, e - delta, e + delta});
      if (i + 1 < ends.size()) probes.push_back((e + ends[i + 1]) / 2);
    }
    if (!ends.empty()) {
      probes.insert(probes.end(), {ends.front() - 1, ends.front() - 10, ends.back() + 1, ends.back() + 10});
    }
    std::map<std::string, Complex> binding;
    for (long double t : probes) {
      budget_.charge();
      binding[*leaves.begin()] = Complex(t, 0);
      SamplePoint pt{0, true, &binding};
      if (holds(rel, pt) != contains(pieces, t)) return false;
    }
    return true;
  }

  // --- scalars ------------------------------------------------------------------------------

  bool scalar_equal(NodePtr g, NodePtr p) {
    if (g->kind == Kind::Ratio && p->kind == Kind::Ratio) {
      long double b, d;
      bool nonzero = real_value(*g->args[1], &b) && real_value(*p->args[1], &d) && b != 0 && d != 0;
      if (!nonzero) return scalar_equal(g->args[0], p->args[0]) && scalar_equal(g->args[1], p->args[1]);
    }
    if (g->kind == Kind::Ratio) g = simplify(make_div(g->args[0], g->args[1]), budget_);
    if (p->kind == Kind::Ratio) p = simplify(make_div(p->args[0], p->args[1]), budget_);
    if (to_string(*g) == to_string(*p)) return true;
    bool dec = has_decimal(*g) || has_decimal(*p);
    std::set<std::string> lg, lp;
    collect_leaves(*g, lg);
    collect_leaves(*p, lp);
    if (lg.empty() && lp.empty()) {
      // Integer literals too long for 128 bits keep their digits.
      if (g->kind == Kind::Number && p->kind == Kind::Number && !g->exact && !p->exact && !g->name.empty() &&
          !p->name.empty())
        return g->name == p->name;
      if (!dec) {
        auto qg = exact_value(*g, budget_), qp = exact_value(*p, budget_);
        if (qg && qp) return *qg == *qp;
        Verdict m = modular_equal(*g, *p, budget_);  // rationals past 128 bits: 10^{100} + 1
        if (m != Verdict::Unknown) return m == Verdict::Equal;
        if (exact_equal(*g, *p, budget_) == Verdict::Equal) return true;
      }
      Complex vg = evaluate(*g, SamplePoint{}, budget_), vp = evaluate(*p, SamplePoint{}, budget_);
      if (!finite(vg) || !finite(vp)) return false;
      if (dec)
        return rounded_equal(vg.real(), vp.real(), opts_.float_rounding) &&
               rounded_equal(vg.imag(), vp.imag(), opts_.float_rounding);
      return close(vg, vp, static_cast<long double>(opts_.rel_tol));
    }
    Verdict v = exact_equal(*g, *p, budget_);
    if (v == Verdict::Equal) return true;
    if (v == Verdict::NotEqual && !dec) return false;
    long double tol = dec ? std::pow(10.0L, -opts_.float_rounding) : static_cast<long double>(opts_.rel_tol);
    return numeric_identity(*g, *p, tol);
  }

  bool numeric_identity(const Node& g, const Node& p, long double tol) {
    int valid = 0;
    for (int k = 0; k < kSamples; ++k) {
      bool positive = k < kSamples / 2;
      SamplePoint pt{static_cast<uint64_t>(k + 1), positive, nullptr};
      Complex vg = evaluate(g, pt, budget_), vp = evaluate(p, pt, budget_);
      if (!finite(vg) || !finite(vp)) continue;
      if (!positive) {
        bool real_g = std::fabs(vg.imag()) <= 1e-12L * std::max(1.0L, std::abs(vg));
        bool real_p = std::fabs(vp.imag()) <= 1e-12L * std::max(1.0L, std::abs(vp));
        if (!real_g || !real_p) continue;  // outside the real domain of one side
      }
      if (!close(vg, vp, tol)) return false;
      ++valid;
    }
    return valid >= kMinValidSamples;
  }

  const CompareOptions& opts_;
  WorkBudget& budget_;
};

}  // namespace

bool equivalent(const NodePtr& gold, const NodePtr& pred, const CompareOptions& options, WorkBudget& budget) {
  NodePtr p = pred;
  if (!options.strict) {
    std::set<std::string> gs, ps;
    collect_symbols(*gold, gs);
    collect_symbols(*pred, ps);
    if (!gs.empty() && gs.size() == ps.size() && gs != ps) {
      std::map<std::string, std::string> names;
      for (auto gi = gs.begin(), pi = ps.begin(); gi != gs.end(); ++gi, ++pi) names[*pi] = *gi;
      p = simplify(rename(pred, names), budget);
    }
  }
  Comparer c(options, budget);
  return c.equal(gold, p);
}

}  // namespace grpo::reward::math
