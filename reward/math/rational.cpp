#include "reward/math/rational.h"

#include <algorithm>
#include <cctype>

namespace grpo::reward::math {
namespace {

// |x| must stay below this so that negation, abs and gcd never overflow.
constexpr int128 kLimit = static_cast<int128>(1) << 126;

int128 abs128(int128 v) { return v < 0 ? -v : v; }

int128 gcd128(int128 a, int128 b) {
  a = abs128(a);
  b = abs128(b);
  while (b != 0) {
    int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

bool in_range(int128 v) { return v < kLimit && v > -kLimit; }

std::optional<int128> checked_mul(int128 a, int128 b) {
  int128 r;
  if (__builtin_mul_overflow(a, b, &r) || !in_range(r)) return std::nullopt;
  return r;
}

std::optional<int128> checked_add(int128 a, int128 b) {
  int128 r;
  if (__builtin_add_overflow(a, b, &r) || !in_range(r)) return std::nullopt;
  return r;
}

}  // namespace

std::optional<Rational> Rational::make(int128 n, int128 d) {
  if (d == 0 || !in_range(n) || !in_range(d)) return std::nullopt;
  if (d < 0) {
    n = -n;
    d = -d;
  }
  int128 g = gcd128(n, d);
  if (g > 1) {
    n /= g;
    d /= g;
  }
  Rational r;
  r.num_ = n;
  r.den_ = d;
  return r;
}

std::optional<Rational> Rational::parse_decimal(std::string_view text) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  int128 mantissa = 0;
  int64_t scale = 0;  // value = mantissa * 10^-scale
  bool any_digit = false, seen_point = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.' && !seen_point) {
      seen_point = true;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    any_digit = true;
    auto m = checked_mul(mantissa, 10);
    if (!m) return std::nullopt;
    auto s = checked_add(*m, c - '0');
    if (!s) return std::nullopt;
    mantissa = *s;
    if (seen_point) ++scale;
  }
  if (!any_digit) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) exp_negative = text[i++] == '-';
    int64_t e = 0;
    bool exp_digit = false;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      exp_digit = true;
      e = e * 10 + (text[i] - '0');
      if (e > 1000) return std::nullopt;  // far beyond the 128-bit range either way
    }
    if (!exp_digit) return std::nullopt;
    scale += exp_negative ? e : -e;
  }
  if (i != text.size()) return std::nullopt;
  if (negative) mantissa = -mantissa;
  if (scale >= 0) {
    auto p = pow(Rational(10), scale);
    if (!p) return std::nullopt;
    return make(mantissa, p->num());
  }
  auto p = pow(Rational(10), -scale);
  if (!p) return std::nullopt;
  auto n = checked_mul(mantissa, p->num());
  if (!n) return std::nullopt;
  return make(*n, 1);
}

long double Rational::to_long_double() const { return static_cast<long double>(num_) / static_cast<long double>(den_); }

std::string int128_to_string(int128 v) {
  if (v == 0) return "0";
  bool negative = v < 0;
  // v is within (-2^126, 2^126) for Rationals, but be safe for any value.
  unsigned __int128 u = negative ? static_cast<unsigned __int128>(-(v + 1)) + 1 : static_cast<unsigned __int128>(v);
  std::string s;
  while (u > 0) {
    s.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (negative) s.push_back('-');
  std::reverse(s.begin(), s.end());
  return s;
}

std::string Rational::str() const {
  std::string s = int128_to_string(num_);
  if (den_ != 1) s += "/" + int128_to_string(den_);
  return s;
}

std::optional<Rational> add(const Rational& a, const Rational& b) {
  int128 g = gcd128(a.den(), b.den());
  auto x = checked_mul(a.num(), b.den() / g);
  auto y = checked_mul(b.num(), a.den() / g);
  auto d = checked_mul(a.den() / g, b.den());
  if (!x || !y || !d) return std::nullopt;
  auto n = checked_add(*x, *y);
  if (!n) return std::nullopt;
  return Rational::make(*n, *d);
}

Rational neg(const Rational& a) { return *Rational::make(-a.num(), a.den()); }

std::optional<Rational> sub(const Rational& a, const Rational& b) { return add(a, neg(b)); }

std::optional<Rational> mul(const Rational& a, const Rational& b) {
  // Cross-reduce first to keep intermediates small.
  int128 g1 = gcd128(a.num(), b.den());
  int128 g2 = gcd128(b.num(), a.den());
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  auto n = checked_mul(a.num() / g1, b.num() / g2);
  auto d = checked_mul(a.den() / g2, b.den() / g1);
  if (!n || !d) return std::nullopt;
  return Rational::make(*n, *d);
}

std::optional<Rational> div(const Rational& a, const Rational& b) {
  if (b.is_zero()) return std::nullopt;
  auto inv = Rational::make(b.den(), b.num());
  if (!inv) return std::nullopt;
  return mul(a, *inv);
}

std::optional<Rational> pow(const Rational& a, int64_t e) {
  if (e < 0) {
    if (a.is_zero()) return std::nullopt;
    auto inv = Rational::make(a.den(), a.num());
    if (!inv || e == INT64_MIN) return std::nullopt;
    return pow(*inv, -e);
  }
  Rational result(1), base = a;
  // |base| > 1 overflows after at most ~7 squarings, so huge exponents fail fast.
  bool trivial = a.is_zero() || (a.is_integer() && (a.num() == 1 || a.num() == -1));
  if (trivial) {
    if (a.is_zero()) return e == 0 ? Rational(1) : Rational(0);
    return (a.num() == -1 && (e % 2 == 1)) ? Rational(-1) : Rational(1);
  }
  while (e > 0) {
    if (e & 1) {
      auto r = mul(result, base);
      if (!r) return std::nullopt;
      result = *r;
    }
    e >>= 1;
    if (e > 0) {
      auto b = mul(base, base);
      if (!b) return std::nullopt;
      base = *b;
    }
  }
  return result;
}

int compare(const Rational& a, const Rational& b) {
  auto d = sub(a, b);
  if (d) return d->sign();
  long double x = a.to_long_double(), y = b.to_long_double();
  return x < y ? -1 : (x > y ? 1 : 0);
}

}  // namespace grpo::reward::math
