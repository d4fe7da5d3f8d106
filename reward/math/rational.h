// Exact rational numbers on 128-bit integers with overflow detection.
//
// Every operation that could overflow returns std::nullopt instead (never UB); callers then fall
// back to floating point. Values are kept reduced with a positive denominator; magnitudes are
// limited to |x| < 2^126 so that negation and gcd can never overflow.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace grpo::reward::math {

using int128 = __int128;

// Thread-safety: an immutable value; copies may be shared and read on any thread.
class Rational {
 public:
  Rational() = default;
  explicit Rational(int64_t n) : num_(n), den_(1) {}

  // n/d reduced; nullopt when d == 0 or a magnitude leaves the supported range.
  static std::optional<Rational> make(int128 n, int128 d);
  // Parses "123", "-4.50", ".5", "1.5e3" (exact: decimals become p/10^k). nullopt if malformed
  // or out of range.
  static std::optional<Rational> parse_decimal(std::string_view text);

  int128 num() const { return num_; }
  int128 den() const { return den_; }
  bool is_zero() const { return num_ == 0; }
  bool is_integer() const { return den_ == 1; }
  int sign() const { return num_ > 0 ? 1 : (num_ < 0 ? -1 : 0); }
  long double to_long_double() const;
  std::string str() const;  // "3", "-7/2"

  friend bool operator==(const Rational& a, const Rational& b) { return a.num_ == b.num_ && a.den_ == b.den_; }
  friend bool operator!=(const Rational& a, const Rational& b) { return !(a == b); }

 private:
  int128 num_ = 0;
  int128 den_ = 1;
};

std::optional<Rational> add(const Rational& a, const Rational& b);
std::optional<Rational> sub(const Rational& a, const Rational& b);
std::optional<Rational> mul(const Rational& a, const Rational& b);
std::optional<Rational> div(const Rational& a, const Rational& b);  // nullopt on b == 0
Rational neg(const Rational& a);
// a^e for integer e (negative allowed when a != 0); nullopt on overflow. Exponentiation by
// squaring, so a huge e fails after a few steps instead of looping.
std::optional<Rational> pow(const Rational& a, int64_t e);
// -1, 0, 1; exact (cross-multiplication is checked, falls back to long double on overflow).
int compare(const Rational& a, const Rational& b);

std::string int128_to_string(int128 v);

}  // namespace grpo::reward::math
