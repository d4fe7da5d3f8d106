#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <stdexcept>

#include "common/error.h"
#include "common/utf8.h"

namespace grpo {
namespace {

// Oniguruma's classes written as PCRE2 class items; each was checked against libonig 6.9 over
// every code point. A quirk: a lone \w (not inside [...]) also takes superscripts 1-3 and the
// vulgar fractions, from the Latin-1 table Oniguruma uses below U+0100.
constexpr const char* kSpace = "\\p{White_Space}";
constexpr const char* kNotSpace = "\\P{White_Space}";
constexpr const char* kWordItems = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";
constexpr const char* kLoneWordItems = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr const char* kHexItems = "0-9a-fA-F";
// Escapes that mean the same in Oniguruma and PCRE2 (besides the rewritten ones).
constexpr std::string_view kSameEscapes = "dDnrtfeaAzZGRXKNkgc";

// POSIX brackets -> PCRE2 class items (Oniguruma's Unicode meaning, not PCRE2's).
struct PosixClass {
  const char* name;
  const char* items;
  const char* negated;  // a single item for [:^name:], or nullptr when it has none
};
constexpr PosixClass kPosix[] = {
    {"alpha", "\\p{Alphabetic}", "\\P{Alphabetic}"},
    {"upper", "\\p{Uppercase}", "\\P{Uppercase}"},
    {"lower", "\\p{Lowercase}", "\\P{Lowercase}"},
    {"digit", "\\p{Nd}", "\\P{Nd}"},
    {"punct", "\\p{P}", "\\P{P}"},
    {"space", "\\p{White_Space}", "\\P{White_Space}"},
    {"cntrl", "\\p{Cc}", "\\P{Cc}"},
    {"alnum", "\\p{Alphabetic}\\p{Nd}", nullptr},
    {"word", "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}", nullptr},
    {"xdigit", "0-9a-fA-F", nullptr},
    {"blank", "\\p{Zs}\\t", nullptr},
};

// True when NAME is a script PCRE2 knows. Oniguruma's \p{Han} tests the Script property, PCRE2's
// tests Script_Extensions, so scripts are rewritten to \p{sc:Han}.
bool is_script(const std::string& name) {
  const std::string probe = "\\p{sc:" + name + "}";
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(probe.data()), probe.size(), PCRE2_UTF, &err, &offset, nullptr);
  if (!code) return false;
  pcre2_code_free(code);
  return true;
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

class OnigTranslator {
 public:
  explicit OnigTranslator(std::string_view p) : p_(p) {}

  std::string run() {
    while (i_ < p_.size()) {
      if (in_class_) {
        class_char();
      } else {
        plain_char();
      }
    }
    if (in_class_) fail("unterminated character class");
    return out_;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(why + " (at pattern byte " + std::to_string(i_) + ")");
  }

  // Copies the braced argument of \p{..}, \x{..}, \o{..}, \k<..> style escapes when present.
  void copy_escape_argument() {
    if (i_ >= p_.size()) return;
    char open = p_[i_];
    char close = open == '{' ? '}' : open == '<' ? '>' : open == '\'' ? '\'' : 0;
    if (!close) return;
    size_t end = p_.find(close, i_ + 1);
    if (end == std::string_view::npos) fail("unterminated escape argument");
    out_.append(p_.substr(i_, end + 1 - i_));
    i_ = end + 1;
  }

  // Handles the escape at p_[i_] == '\\'; `in_class` selects the class-item rewrites.
  void escape(bool in_class) {
    if (i_ + 1 >= p_.size()) fail("pattern ends with a backslash");
    const char c = p_[i_ + 1];
    i_ += 2;
    switch (c) {
      case 'u': {
        if (i_ + 4 > p_.size() || !is_hex(p_[i_]) || !is_hex(p_[i_ + 1]) || !is_hex(p_[i_ + 2]) || !is_hex(p_[i_ + 3]))
          fail("\\u must be followed by four hex digits");
        out_ += "\\x{";
        out_.append(p_.substr(i_, 4));
        out_ += '}';
        i_ += 4;
        return;
      }
      case 's': out_ += kSpace; return;
      case 'S': out_ += kNotSpace; return;
      case 'v': out_ += "\\x0B"; return;
      case 'w': out_ += in_class ? std::string(kWordItems) : "[" + std::string(kLoneWordItems) + "]"; return;
      case 'h': out_ += in_class ? std::string(kHexItems) : "[" + std::string(kHexItems) + "]"; return;
      case 'W':
      case 'H':
        if (in_class) fail(std::string("\\") + c + " inside a character class is not supported");
        out_ += "[^" + std::string(c == 'W' ? kLoneWordItems : kHexItems) + "]";
        return;
      case 'p':
      case 'P': return property(c);
      case 'b':
      case 'B':
        if (in_class) {  // backspace
          out_ += "\\x08";
        } else {  // word boundary under Oniguruma's \w
          const std::string w = "[" + std::string(kLoneWordItems) + "]";
          out_ += c == 'b' ? "(?:(?<=" + w + ")(?!" + w + ")|(?<!" + w + ")(?=" + w + "))"
                           : "(?:(?<=" + w + ")(?=" + w + ")|(?<!" + w + ")(?!" + w + "))";
        }
        return;
      case 'x':
      case 'o':
        out_ += '\\';
        out_ += c;
        copy_escape_argument();
        return;
      default: break;
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      if (kSameEscapes.find(c) == std::string_view::npos) fail(std::string("unsupported escape \\") + c);
      out_ += '\\';
      out_ += c;
      if (c == 'k' || c == 'g') copy_escape_argument();
      return;
    }
    // Escaped punctuation, digits (back-references, octal) or a non-ASCII character: as is.
    out_ += '\\';
    out_ += c;
  }

  // \p{Name}, \p{^Name}, \P{Name}: scripts become \p{sc:Name}; the rest is passed on.
  void property(char c) {
    if (i_ >= p_.size() || p_[i_] != '{') fail(std::string("\\") + c + " must be followed by {name}");
    size_t end = p_.find('}', i_);
    if (end == std::string_view::npos) fail("unterminated property name");
    std::string name(p_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    bool negated = c == 'P';
    if (!name.empty() && name[0] == '^') negated = !negated, name.erase(0, 1);
    out_ += negated ? "\\P{" : "\\p{";
    out_ += is_script(name) ? "sc:" + name : name;
    out_ += '}';
  }

  void plain_char() {
    const char c = p_[i_];
    if (c == '\\') return escape(false);
    if (c == '[') {
      out_ += '[';
      ++i_;
      in_class_ = true;
      if (i_ < p_.size() && p_[i_] == '^') out_ += p_[i_++];
      if (i_ < p_.size() && p_[i_] == ']') out_ += "\\]", ++i_;  // a leading ] is literal
      return;
    }
    if (c == '{' && i_ + 1 < p_.size() && p_[i_ + 1] == ',') {  // {,n} means {0,n}
      size_t j = i_ + 2;
      while (j < p_.size() && std::isdigit(static_cast<unsigned char>(p_[j]))) ++j;
      if (j > i_ + 2 && j < p_.size() && p_[j] == '}') {
        out_ += "{0,";
        out_.append(p_.substr(i_ + 2, j + 1 - (i_ + 2)));
        i_ = j + 1;
        return;
      }
    }
    if (c == '(' && i_ + 1 < p_.size() && p_[i_ + 1] == '?') return group_options();
    out_ += c;
    ++i_;
  }

  // (?imx-imx) and (?imx-imx:...): Oniguruma's m is PCRE2's s (dot matches newline).
  void group_options() {
    size_t j = i_ + 2;
    std::string flags;
    while (j < p_.size() && (std::isalpha(static_cast<unsigned char>(p_[j])) || p_[j] == '-')) flags += p_[j++];
    if (flags.empty() || j >= p_.size() || (p_[j] != ':' && p_[j] != ')')) {
      out_ += "(?";  // not an option group: (?: (?= (?! (?<= (?<name> (?> ...
      i_ += 2;
      return;
    }
    out_ += "(?";
    for (char f : flags) {
      if (f == 'i' || f == 'x' || f == '-') {
        out_ += f;
      } else if (f == 'm') {
        out_ += 's';
      } else {
        fail(std::string("unsupported group option '") + f + "'");
      }
    }
    i_ = j;
  }

  // [:name:] or [:^name:] inside a class.
  void posix_bracket() {
    size_t end = p_.find(":]", i_ + 2);
    if (end == std::string_view::npos) fail("unterminated POSIX bracket");
    std::string name(p_.substr(i_ + 2, end - i_ - 2));
    bool negated = !name.empty() && name[0] == '^';
    if (negated) name.erase(0, 1);
    for (const PosixClass& pc : kPosix) {
      if (name != pc.name) continue;
      if (negated && !pc.negated) fail("POSIX bracket [:^" + name + ":] is not supported");
      out_ += negated ? pc.negated : pc.items;
      i_ = end + 2;
      return;
    }
    fail("POSIX bracket [:" + std::string(negated ? "^" : "") + name + ":] is not supported");
  }

  void class_char() {
    const char c = p_[i_];
    if (c == '\\') return escape(true);
    if (c == ']') {
      out_ += ']';
      ++i_;
      in_class_ = false;
      return;
    }
    if (c == '[') {
      if (i_ + 1 < p_.size() && p_[i_ + 1] == ':') return posix_bracket();
      fail("nested character classes are not supported");
    }
    if (c == '&' && i_ + 1 < p_.size() && p_[i_ + 1] == '&') fail("class intersection (&&) is not supported");
    out_ += c;
    ++i_;
  }

  std::string_view p_;
  size_t i_ = 0;
  bool in_class_ = false;
  std::string out_;
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buf), n);
}

// Per-thread match state: match data for the whole-match offsets and a JIT stack large enough for
// long whitespace runs.
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

}  // namespace

std::string onig_to_pcre2(std::string_view pattern) { return OnigTranslator(pattern).run(); }

Regex Regex::compile(const std::string& pattern, uint32_t options, const std::string& what) {
  pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &offset, cc);
  pcre2_compile_context_free(cc);
  if (!code)
    throw InputError(what + ": the regex does not compile: " + pcre2_message(err) + " at byte " +
                     std::to_string(offset) + " of \"" + pattern + "\"");
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is absent
  return Regex(std::shared_ptr<const pcre2_real_code_8>(
                   code, [](const pcre2_real_code_8* c) { pcre2_code_free(const_cast<pcre2_code*>(c)); }),
               what);
}

Regex Regex::onig(std::string_view pattern, const std::string& what) {
  std::string translated;
  try {
    translated = onig_to_pcre2(pattern);
  } catch (const std::invalid_argument& e) {
    throw InputError(what + ": unsupported regex \"" + std::string(pattern) + "\": " + e.what());
  }
  return compile(translated, PCRE2_UCP | PCRE2_MULTILINE, what);
}

Regex Regex::literal(std::string_view text, const std::string& what) {
  return compile(std::string(text), PCRE2_LITERAL, what);
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  thread_local MatchScratch scratch;
  // PCRE2's default step limit (10M) fails on a legitimate 12 MB whitespace run, where a pattern
  // like \s+$ backtracks once per byte; allow steps in proportion to the subject instead.
  const uint64_t limit = std::max<uint64_t>(10'000'000, 256 * static_cast<uint64_t>(text.size()));
  pcre2_set_match_limit(scratch.context, static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX)));
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t last_end = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (last_end <= text.size()) {
    int rc = pcre2_match(code_.get(), subject, text.size(), last_end, 0, scratch.data, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0)
      throw InputError(what_ + ": regex matching failed at byte " + std::to_string(last_end) + " of a " +
                       std::to_string(text.size()) + "-byte piece: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.data);
    const size_t s = ov[0], e = ov[1];
    if (s == e && have_last && last_match_end == e) {
      if (last_end >= text.size()) break;
      char32_t cp;
      last_end += utf8::decode(text, last_end, &cp);
      continue;
    }
    out.emplace_back(s, e);
    last_end = e;
    last_match_end = e;
    have_last = true;
  }
}

}  // namespace grpo
