// The host's half of the C++ harness (reward/code/harness.h): a test `assert(A == B);` whose B is
// a literal is split so that only A goes into the sandbox and B is compared here.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace grpo::reward {

struct CppAssert {
  std::string inner;                       // E of `assert(E);`
  std::string lhs;                         // A when E is `A == B` with a literal B, else empty
  std::optional<nlohmann::json> expected;  // B's value, as the driver would print it
};

// A test that is exactly one `assert(E);` (else nullopt). E is split at a top-level `==` when A
// holds no operator of lower precedence and B parses as a literal (parse_cpp_literal).
std::optional<CppAssert> parse_cpp_assert(const std::string& test);

// A C++ literal as JSON, or nullopt: integers and floating numbers (suffixes; an `f` suffix rounds
// to float), true/false, 'c' and "strings" (as strings), nullptr/std::nullopt (null), brace lists
// and `Type{...}` / `Type({...})` (arrays), `Type(x)` for a non-container type (x) where Type is a
// std:: or fundamental type (not the solution's own),
// std::make_pair/make_tuple(...) (arrays), and any of them in parentheses.
std::optional<nlohmann::json> parse_cpp_literal(const std::string& text);

// C++ `==` on printed values: numbers and bools by numeric value, strings and arrays exactly.
bool same_value(const nlohmann::json& got, const nlohmann::json& expected);

}  // namespace grpo::reward
