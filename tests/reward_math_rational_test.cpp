// Exact rationals: reduction, arithmetic, and overflow detected instead of wrapping.
#include <gtest/gtest.h>

#include "reward/math/rational.h"

namespace grpo::reward::math {
namespace {

Rational R(int64_t n, int64_t d = 1) { return *Rational::make(n, d); }

TEST(MathRational, ReducesAndKeepsDenominatorPositive) {
  EXPECT_EQ(R(2, 4), R(1, 2));
  EXPECT_EQ(R(3, -6), R(-1, 2));
  EXPECT_EQ(R(-3, -6).str(), "1/2");
  EXPECT_EQ(R(0, 5).str(), "0");
  EXPECT_FALSE(Rational::make(1, 0).has_value());
}

TEST(MathRational, Arithmetic) {
  EXPECT_EQ(*add(R(1, 2), R(1, 3)), R(5, 6));
  EXPECT_EQ(*sub(R(1, 2), R(1, 3)), R(1, 6));
  EXPECT_EQ(*mul(R(2, 3), R(9, 4)), R(3, 2));
  EXPECT_EQ(*div(R(1, 2), R(1, 4)), R(2));
  EXPECT_FALSE(div(R(1), R(0)).has_value());
  EXPECT_EQ(*pow(R(2, 3), 3), R(8, 27));
  EXPECT_EQ(*pow(R(2), -2), R(1, 4));
  EXPECT_EQ(*pow(R(-1), 1000000000001LL), R(-1));
  EXPECT_EQ(compare(R(1, 3), R(1, 2)), -1);
  EXPECT_EQ(compare(R(7, 7), R(1)), 0);
}

TEST(MathRational, OverflowIsDetectedNotWrapped) {
  auto big = pow(R(2), 100);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->str(), "1267650600228229401496703205376");
  EXPECT_FALSE(mul(*big, *big).has_value());
  EXPECT_FALSE(pow(R(2), 200).has_value());
  // A huge exponent fails after a handful of squarings instead of looping.
  EXPECT_FALSE(pow(R(3), 10000000000LL).has_value());
  EXPECT_FALSE(pow(R(1, 3), 10000000000LL).has_value());
  auto near_limit = pow(R(2), 125);
  ASSERT_TRUE(near_limit.has_value());
  EXPECT_FALSE(add(*near_limit, *near_limit).has_value());  // 2^126 is past the supported range
}

TEST(MathRational, ParsesDecimalsExactly) {
  EXPECT_EQ(*Rational::parse_decimal("0.25"), R(1, 4));
  EXPECT_EQ(*Rational::parse_decimal("-.5"), R(-1, 2));
  EXPECT_EQ(*Rational::parse_decimal("1.5e3"), R(1500));
  EXPECT_EQ(*Rational::parse_decimal("15E-4"), R(3, 2000));
  EXPECT_EQ(*Rational::parse_decimal("007"), R(7));
  EXPECT_FALSE(Rational::parse_decimal("1e999").has_value());
  EXPECT_FALSE(Rational::parse_decimal("1e-999").has_value());
  EXPECT_FALSE(Rational::parse_decimal("12a").has_value());
  EXPECT_FALSE(Rational::parse_decimal("").has_value());
  EXPECT_FALSE(Rational::parse_decimal("123456789012345678901234567890123456789012345").has_value());
}

}  // namespace
}  // namespace grpo::reward::math
