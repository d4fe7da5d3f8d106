#include "reward/math/modular.h"

#include <cctype>
#include <optional>

#include "reward/math/polynomial.h"

namespace grpo::reward::math {
namespace {

using u64 = uint64_t;
using u128 = unsigned __int128;

constexpr u64 kPrimes[] = {2305843009213693951ULL /* 2^61 - 1 */, 4611686018427387847ULL /* 2^62 - 57 */,
                           1000000000000000003ULL};

u64 mulmod(u64 a, u64 b, u64 p) { return static_cast<u64>(static_cast<u128>(a) * b % p); }

u64 powmod(u64 b, u128 e, u64 p, WorkBudget& budget) {
  u64 r = 1;
  b %= p;
  while (e > 0) {
    budget.charge();
    if (e & 1) r = mulmod(r, b, p);
    b = mulmod(b, b, p);
    e >>= 1;
  }
  return r;
}

std::optional<u64> inverse(u64 a, u64 p, WorkBudget& budget) {
  if (a % p == 0) return std::nullopt;
  return powmod(a, p - 2, p, budget);  // p is prime
}

u64 reduce_int128(int128 v, u64 p) {
  bool negative = v < 0;
  u128 m = negative ? static_cast<u128>(-(v + 1)) + 1 : static_cast<u128>(v);
  u64 r = static_cast<u64>(m % p);
  return negative && r ? p - r : r;
}

class Residue {
 public:
  Residue(u64 p, WorkBudget& budget) : p_(p), budget_(budget) {}

  std::optional<u64> of(const Node& n) {
    budget_.charge();
    switch (n.kind) {
      case Kind::Number: {
        if (n.decimal) return std::nullopt;
        if (n.exact) {
          auto inv = inverse(reduce_int128(n.q.den(), p_), p_, budget_);
          if (!inv) return std::nullopt;
          return mulmod(reduce_int128(n.q.num(), p_), *inv, p_);
        }
        if (n.name.empty()) return std::nullopt;  // a float that lost its digits
        u64 r = 0;
        for (char c : n.name) {
          if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
          r = static_cast<u64>((static_cast<u128>(r) * 10 + static_cast<u64>(c - '0')) % p_);
        }
        return r;
      }
      case Kind::Add: {
        u64 s = 0;
        for (const auto& a : n.args) {
          auto v = of(*a);
          if (!v) return std::nullopt;
          s = static_cast<u64>((static_cast<u128>(s) + *v) % p_);
        }
        return s;
      }
      case Kind::Mul: {
        u64 s = 1;
        for (const auto& a : n.args) {
          auto v = of(*a);
          if (!v) return std::nullopt;
          s = mulmod(s, *v, p_);
        }
        return s;
      }
      case Kind::Pow: {
        auto e = exponent(*n.args[1]);
        if (!e) return std::nullopt;
        auto b = of(*n.args[0]);
        if (!b) return std::nullopt;
        if (*e >= 0) return powmod(*b, static_cast<u128>(*e), p_, budget_);
        auto inv = inverse(*b, p_, budget_);
        if (!inv) return std::nullopt;
        return powmod(*inv, static_cast<u128>(-*e), p_, budget_);
      }
      default: return std::nullopt;
    }
  }

 private:
  // Integer exponents, themselves possibly large: 10^{10} is evaluated exactly.
  std::optional<int128> exponent(const Node& e) {
    auto q = exact_value(e, budget_);
    if (!q || !q->is_integer()) return std::nullopt;
    return q->num();
  }

  u64 p_;
  WorkBudget& budget_;
};

}  // namespace

Verdict modular_equal(const Node& a, const Node& b, WorkBudget& budget) {
  for (u64 p : kPrimes) {
    Residue r(p, budget);
    auto x = r.of(a);
    auto y = r.of(b);
    if (!x || !y) return Verdict::Unknown;
    if (*x != *y) return Verdict::NotEqual;
  }
  return Verdict::Equal;
}

}  // namespace grpo::reward::math
