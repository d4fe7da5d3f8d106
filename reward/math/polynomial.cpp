#include "reward/math/polynomial.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace grpo::reward::math {
namespace {

constexpr size_t kMaxTerms = 200;
constexpr int kMaxExponent = 64;
constexpr int64_t kMaxPower = 32;

using Monomial = std::vector<std::pair<int, int>>;  // (atom id, exponent > 0), sorted by id
using Poly = std::map<Monomial, Rational>;          // no zero coefficients

struct RationalFunction {
  Poly num, den;
};

class Converter {
 public:
  explicit Converter(WorkBudget& budget) : budget_(budget) {}

  std::optional<RationalFunction> convert(const Node& n) {
    budget_.charge();
    switch (n.kind) {
      case Kind::Number: {
        if (!n.exact) return std::nullopt;
        return RationalFunction{constant(n.q), constant(Rational(1))};
      }
      case Kind::Symbol:
        if (n.name == "...") return std::nullopt;
        return atom(n.name, false);
      case Kind::Constant:
        if (n.name == "pi" || n.name == "e") return atom("#" + n.name, false);
        if (n.name == "i") return atom("#i", true);
        return std::nullopt;
      case Kind::Add: return fold(n, &Converter::add_rf);
      case Kind::Mul: return fold(n, &Converter::mul_rf);
      case Kind::Pow: {
        const Node& e = *n.args[1];
        if (e.kind == Kind::Number && e.exact && e.q.is_integer() && e.q.num() >= -kMaxPower &&
            e.q.num() <= kMaxPower) {
          auto base = convert(*n.args[0]);
          if (!base) return std::nullopt;
          return pow_rf(*base, static_cast<int64_t>(e.q.num()));
        }
        return atom(to_string(n), true);
      }
      case Kind::Func: return atom(to_string(n), !n.undefined_function);
      case Kind::Percent: {
        auto x = convert(*n.args[0]);
        if (!x) return std::nullopt;
        return mul_rf(*x, RationalFunction{constant(*Rational::make(1, 100)), constant(Rational(1))});
      }
      case Kind::Ratio: {
        auto a = convert(*n.args[0]);
        auto b = convert(*n.args[1]);
        if (!a || !b) return std::nullopt;
        auto inv = pow_rf(*b, -1);
        if (!inv) return std::nullopt;
        return mul_rf(*a, *inv);
      }
      default: return std::nullopt;
    }
  }

  bool used_opaque() const { return used_opaque_; }
  bool used_atoms() const { return !ids_.empty(); }

  static bool is_zero(const Poly& p) { return p.empty(); }

  std::optional<Poly> mul(const Poly& a, const Poly& b) {
    Poly out;
    budget_.charge(static_cast<int64_t>(a.size() * b.size()) + 1);
    for (const auto& [ma, ca] : a) {
      for (const auto& [mb, cb] : b) {
        auto m = mul_monomial(ma, mb);
        auto c = math::mul(ca, cb);
        if (!m || !c) return std::nullopt;
        if (!accumulate(out, *m, *c)) return std::nullopt;
      }
    }
    if (out.size() > kMaxTerms) return std::nullopt;
    return out;
  }

  std::optional<Poly> add(const Poly& a, const Poly& b, const Rational& scale_b = Rational(1)) {
    Poly out = a;
    budget_.charge(static_cast<int64_t>(b.size()) + 1);
    for (const auto& [m, c] : b) {
      auto s = math::mul(c, scale_b);
      if (!s || !accumulate(out, m, *s)) return std::nullopt;
    }
    if (out.size() > kMaxTerms) return std::nullopt;
    return out;
  }

 private:
  static Poly constant(const Rational& q) {
    Poly p;
    if (!q.is_zero()) p[{}] = q;
    return p;
  }

  std::optional<RationalFunction> atom(const std::string& key, bool opaque) {
    auto it = ids_.find(key);
    int id;
    if (it == ids_.end()) {
      id = static_cast<int>(ids_.size());
      ids_[key] = id;
    } else {
      id = it->second;
    }
    if (opaque) used_opaque_ = true;
    Poly p;
    p[{{id, 1}}] = Rational(1);
    return RationalFunction{p, constant(Rational(1))};
  }

  static std::optional<Monomial> mul_monomial(const Monomial& a, const Monomial& b) {
    Monomial out;
    size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
      if (j >= b.size() || (i < a.size() && a[i].first < b[j].first))
        out.push_back(a[i++]);
      else if (i >= a.size() || b[j].first < a[i].first)
        out.push_back(b[j++]);
      else {
        int e = a[i].second + b[j].second;
        if (e > kMaxExponent) return std::nullopt;
        out.push_back({a[i].first, e});
        ++i;
        ++j;
      }
    }
    return out;
  }

  static bool accumulate(Poly& p, const Monomial& m, const Rational& c) {
    auto it = p.find(m);
    if (it == p.end()) {
      if (!c.is_zero()) p.emplace(m, c);
      return true;
    }
    auto s = math::add(it->second, c);
    if (!s) return false;
    if (s->is_zero())
      p.erase(it);
    else
      it->second = *s;
    return true;
  }

  // n's arguments combined left to right with `op` (add_rf or mul_rf); nullopt once a step fails.
  std::optional<RationalFunction> fold(const Node& n,
                                       std::optional<RationalFunction> (Converter::*op)(const RationalFunction&,
                                                                                        const RationalFunction&)) {
    std::optional<RationalFunction> acc;
    for (const auto& a : n.args) {
      auto r = convert(*a);
      if (!r) return std::nullopt;
      acc = acc ? (this->*op)(*acc, *r) : r;
      if (!acc) return std::nullopt;
    }
    return acc;
  }

  std::optional<RationalFunction> add_rf(const RationalFunction& a, const RationalFunction& b) {
    if (a.den == b.den) {
      auto n = add(a.num, b.num);
      if (!n) return std::nullopt;
      return RationalFunction{*n, a.den};
    }
    auto x = mul(a.num, b.den);
    auto y = mul(b.num, a.den);
    auto d = mul(a.den, b.den);
    if (!x || !y || !d) return std::nullopt;
    auto n = add(*x, *y);
    if (!n) return std::nullopt;
    return RationalFunction{*n, *d};
  }

  std::optional<RationalFunction> mul_rf(const RationalFunction& a, const RationalFunction& b) {
    auto n = mul(a.num, b.num);
    auto d = mul(a.den, b.den);
    if (!n || !d) return std::nullopt;
    return RationalFunction{*n, *d};
  }

  std::optional<RationalFunction> pow_rf(const RationalFunction& a, int64_t e) {
    RationalFunction base = a;
    if (e < 0) {
      if (is_zero(a.num)) return std::nullopt;
      std::swap(base.num, base.den);
      e = -e;
    }
    RationalFunction out{constant(Rational(1)), constant(Rational(1))};
    for (int64_t k = 0; k < e; ++k) {
      auto r = mul_rf(out, base);
      if (!r) return std::nullopt;
      out = *r;
    }
    return out;
  }

  WorkBudget& budget_;
  std::map<std::string, int> ids_;
  bool used_opaque_ = false;
};

// a = na/da and b = nb/db as the polynomials (na·db, nb·da), whose difference is zero exactly when
// a = b; nullopt when either side is not a rational function within the limits.
std::optional<std::pair<Poly, Poly>> cross_multiplied(Converter& cv, const Node& a, const Node& b) {
  auto ra = cv.convert(a);
  auto rb = cv.convert(b);
  if (!ra || !rb) return std::nullopt;
  auto x = cv.mul(ra->num, rb->den);
  auto y = cv.mul(rb->num, ra->den);
  if (!x || !y) return std::nullopt;
  return std::pair{std::move(*x), std::move(*y)};
}

}  // namespace

Verdict exact_proportional(const Node& a, const Node& b, Rational* factor, WorkBudget& budget) {
  Converter cv(budget);
  auto xy = cross_multiplied(cv, a, b);
  if (!xy) return Verdict::Unknown;
  auto& [x, y] = *xy;
  Verdict no = cv.used_opaque() ? Verdict::Unknown : Verdict::NotEqual;
  if (y.empty()) return x.empty() ? Verdict::Unknown : no;
  const auto& [m, cy] = *y.begin();
  auto it = x.find(m);
  if (it == x.end()) return no;
  auto c = div(it->second, cy);
  if (!c) return Verdict::Unknown;
  auto d = cv.add(x, y, neg(*c));
  if (!d) return Verdict::Unknown;
  if (!d->empty()) return no;
  if (factor) *factor = *c;
  return Verdict::Equal;
}

Verdict exact_equal(const Node& a, const Node& b, WorkBudget& budget) {
  Converter cv(budget);
  auto xy = cross_multiplied(cv, a, b);
  if (!xy) return Verdict::Unknown;
  auto d = cv.add(xy->first, xy->second, Rational(-1));
  if (!d) return Verdict::Unknown;
  if (d->empty()) return Verdict::Equal;
  return cv.used_opaque() ? Verdict::Unknown : Verdict::NotEqual;
}

std::optional<Rational> exact_value(const Node& n, WorkBudget& budget) {
  Converter cv(budget);
  auto r = cv.convert(n);
  if (!r || cv.used_atoms()) return std::nullopt;
  Rational num(0), den(1);
  if (!r->num.empty()) num = r->num.begin()->second;
  if (r->den.empty()) return std::nullopt;
  den = r->den.begin()->second;
  return div(num, den);
}

}  // namespace grpo::reward::math
