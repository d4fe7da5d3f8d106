// JSON from outside (files, stdin lines, request fields) with a bound on nesting depth, checked
// by a flat scan before nlohmann parses: a deeply nested document (`[[[[...` 10^5 levels) is an
// InputError, never a stack overflow in the code that copies, prints or walks the parsed value.
//
//   nlohmann::json j = parse_json(line, "line 3");   // "line 3: invalid JSON: ..." on bad input
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace grpo {

// The default bound on the nesting of JSON and YAML inputs: far above any real document.
inline constexpr int kMaxInputDepth = 256;

// Throws InputError "WHAT: JSON nested deeper than the limit of MAX levels (at byte B)" when
// the arrays/objects of `text` nest deeper than max_depth. Does not check the rest of the syntax.
// Pure function; thread-safe.
void check_json_depth(std::string_view text, const std::string& what, int max_depth = kMaxInputDepth);

// check_json_depth, then nlohmann::json::parse. Throws InputError "WHAT: invalid JSON: <detail>"
// for a syntax error (an empty `what` leaves out the "WHAT: " prefix). Thread-safe.
nlohmann::json parse_json(std::string_view text, const std::string& what, int max_depth = kMaxInputDepth);

}  // namespace grpo
