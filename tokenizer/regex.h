// Regular expressions of tokenizer.json on PCRE2.
//
// HF tokenizers compiles Split patterns with Oniguruma (its default syntax, no options). PCRE2
// (UTF + UCP + MULTILINE, newline = LF) agrees with it once these are rewritten: \uHHHH escapes;
// \s \S (White_Space, so U+0085 too); \w \W \b \B (Oniguruma's word set); \h \H (hex digit);
// \v (vertical tab only); \p{Script} (Script, not Script_Extensions); POSIX brackets (their
// Unicode meaning); {,n}; (?m) (dot matches newline); ^ and $ (always line anchors). Constructs
// PCRE2 lacks (class intersection &&, nested classes, absent operator, other escapes) are
// rejected with the reason. tests/tokenizer_regex_test.cpp checks all this against libonig.
//
// Subjects may hold invalid UTF-8: such bytes never match (PCRE2_MATCH_INVALID_UTF) and end up
// between matches, so no byte is lost.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace grpo {

// Rewrites an Oniguruma pattern into PCRE2 syntax; throws std::invalid_argument saying which
// construct is unsupported.
std::string onig_to_pcre2(std::string_view pattern);

// Thread-safety: immutable; find_all() may be called concurrently. Copies share the compiled pattern (shared_ptr).
class Regex {
 public:
  // `what` names the pattern in errors (file and key). Throws InputError when it does not compile.
  static Regex onig(std::string_view pattern, const std::string& what);
  static Regex literal(std::string_view text, const std::string& what);

  // Non-overlapping matches [start, end) in order, iterated as Oniguruma's find_iter does: an
  // empty match right where the previous match ended is skipped by advancing one character.
  // Thread-safe.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  Regex(std::shared_ptr<const pcre2_real_code_8> code, std::string what)
      : code_(std::move(code)), what_(std::move(what)) {}
  static Regex compile(const std::string& pattern, uint32_t options, const std::string& what);
  std::shared_ptr<const pcre2_real_code_8> code_;
  std::string what_;
};

}  // namespace grpo
