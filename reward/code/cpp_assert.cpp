#include "reward/code/cpp_assert.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

namespace grpo::reward {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Index just past the string or char literal that starts at s[i] (a quote), or npos.
size_t skip_quoted(const std::string& s, size_t i) {
  const char q = s[i];
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == q)
      return i + 1;
  }
  return std::string::npos;
}

// Index of the bracket that closes the one at s[open], or npos.
size_t closing(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size();) {
    char c = s[i];
    if (c == '"' || c == '\'') {
      i = skip_quoted(s, i);
      if (i == std::string::npos) return i;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') {
      if (--depth == 0) return i;
    }
    ++i;
  }
  return std::string::npos;
}

// The top-level (outside brackets and quotes) positions where `pred` holds.
template <class Pred>
std::vector<size_t> top_level(const std::string& s, Pred pred) {
  std::vector<size_t> at;
  int depth = 0;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '"' || c == '\'') {
      i = skip_quoted(s, i);
      if (i == std::string::npos) return {};
      continue;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && pred(i)) at.push_back(i);
    ++i;
  }
  return at;
}

class LiteralParser {
 public:
  explicit LiteralParser(const std::string& s) : s_(s) {}

  std::optional<nlohmann::json> whole() {
    auto v = value();
    space();
    if (!v || i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  static bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  // A qualified name with optional template arguments: std::vector<std::string>.
  std::string type_name() {
    space();
    size_t start = i_;
    while (i_ < s_.size()) {
      if (ident_char(s_[i_])) {
        ++i_;
      } else if (s_.compare(i_, 2, "::") == 0) {
        i_ += 2;
      } else if (s_[i_] == '<' && i_ > start) {
        int depth = 0;
        for (; i_ < s_.size(); ++i_) {
          if (s_[i_] == '<') ++depth;
          if (s_[i_] == '>' && --depth == 0) break;
        }
        if (i_ == s_.size()) return "";
        ++i_;
        break;
      } else {
        break;
      }
    }
    return s_.substr(start, i_ - start);
  }

  std::optional<nlohmann::json> list(char close) {
    nlohmann::json a = nlohmann::json::array();
    if (eat(close)) return a;
    while (true) {
      auto v = value();
      if (!v) return std::nullopt;
      a.push_back(*v);
      if (eat(close)) return a;
      if (!eat(',')) return std::nullopt;
      if (eat(close)) return a;
    }
  }

  std::optional<nlohmann::json> quoted(char q) {
    std::string text;
    ++i_;
    while (i_ < s_.size() && s_[i_] != q) {
      char c = s_[i_++];
      if (c == '\\') {
        if (i_ >= s_.size()) return std::nullopt;
        char e = s_[i_++];
        switch (e) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case 'r': c = '\r'; break;
          case '0': c = '\0'; break;
          case '\\':
          case '\'':
          case '"':
          case '?': c = e; break;
          default: return std::nullopt;
        }
      }
      text += c;
    }
    if (i_ >= s_.size()) return std::nullopt;
    ++i_;
    if (q == '\'' && text.size() != 1) return std::nullopt;
    return nlohmann::json(text);
  }

  std::optional<nlohmann::json> number(bool negative) {
    size_t start = i_;
    while (i_ < s_.size() && (ident_char(s_[i_]) || s_[i_] == '.' || s_[i_] == '\'' ||
                              ((s_[i_] == '-' || s_[i_] == '+') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))))
      ++i_;
    std::string t;
    for (char c : s_.substr(start, i_ - start))
      if (c != '\'') t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool hex = t.rfind("0x", 0) == 0;
    bool is_float = !hex && t.find_first_of(".e") != std::string::npos;
    bool is_f = is_float && !t.empty() && t.back() == 'f';
    while (!t.empty() && (t.back() == 'u' || t.back() == 'l' || (is_float && t.back() == 'f'))) t.pop_back();
    if (t.empty()) return std::nullopt;
    char* end = nullptr;
    if (is_float) {
      double d = std::strtod(t.c_str(), &end);
      if (*end) return std::nullopt;
      if (is_f) d = static_cast<float>(d);
      return nlohmann::json(negative ? -d : d);
    }
    errno = 0;
    unsigned long long u = std::strtoull(t.c_str(), &end, hex ? 16 : (t.size() > 1 && t[0] == '0' ? 8 : 10));
    if (*end || errno) return std::nullopt;
    if (negative) return nlohmann::json(-static_cast<long long>(u));
    return nlohmann::json(u);
  }

  std::optional<nlohmann::json> value() {
    space();
    if (i_ >= s_.size()) return std::nullopt;
    char c = s_[i_];
    if (c == '-' || c == '+') {
      ++i_;
      space();
      if (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.'))
        return number(c == '-');
      return std::nullopt;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number(false);
    if (c == '"') {  // adjacent string literals are one string
      std::string joined;
      while (i_ < s_.size() && s_[i_] == '"') {
        auto part = quoted('"');
        if (!part) return std::nullopt;
        joined += part->get<std::string>();
        space();
      }
      return nlohmann::json(joined);
    }
    if (c == '\'') return quoted('\'');
    if (c == '{') {
      ++i_;
      return list('}');
    }
    if (c == '(') {
      ++i_;
      auto v = value();
      if (!v || !eat(')')) return std::nullopt;
      return v;
    }
    std::string type = type_name();
    if (type.empty()) return std::nullopt;
    if (type == "true" || type == "false") return nlohmann::json(type == "true");
    if (type == "nullptr" || type == "std::nullopt") return nlohmann::json(nullptr);
    // Only the standard library's types and the fundamental ones: the solution's own type (with
    // its own operator==) compared with Point{1, 2} is not a value the host can judge.
    static const std::set<std::string> fundamental = {"int",   "long", "short", "unsigned", "double",
                                                      "float", "char", "bool",  "size_t"};
    if (type.rfind("std::", 0) != 0 && !fundamental.count(type)) return std::nullopt;
    if (eat('{')) return list('}');
    if (!eat('(')) return std::nullopt;
    if (type == "std::make_pair" || type == "std::make_tuple") return list(')');
    auto v = value();
    if (!v || !eat(')')) return std::nullopt;
    // Type(x): x for a braced list or a non-container type (std::vector<int>(3) holds three zeros).
    if (v->is_array()) return v;
    for (const char* container : {"vector", "deque", "list", "set", "map", "array", "valarray"})
      if (type.find(container) != std::string::npos) return std::nullopt;
    return v;
  }

  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<nlohmann::json> parse_cpp_literal(const std::string& text) { return LiteralParser(text).whole(); }

std::optional<CppAssert> parse_cpp_assert(const std::string& test) {
  std::string t = trim(test);
  if (t.rfind("assert", 0) != 0) return std::nullopt;
  size_t open = t.find_first_not_of(" \t", 6);
  if (open == std::string::npos || t[open] != '(') return std::nullopt;
  size_t close = closing(t, open);
  if (close == std::string::npos || trim(t.substr(close + 1)) != ";") return std::nullopt;
  CppAssert a;
  a.inner = trim(t.substr(open + 1, close - open - 1));
  while (a.inner.size() > 1 && a.inner.front() == '(' && closing(a.inner, 0) == a.inner.size() - 1)
    a.inner = trim(a.inner.substr(1, a.inner.size() - 2));  // assert((A == B)) as <cassert> needs
  const std::string& e = a.inner;
  auto at = [&](size_t i, const char* op) { return e.compare(i, std::strlen(op), op) == 0; };
  auto eq = top_level(e, [&](size_t i) {
    return at(i, "==") && (i == 0 || std::string("=!<>").find(e[i - 1]) == std::string::npos) &&
           (i + 2 >= e.size() || e[i + 2] != '=');
  });
  if (eq.size() != 1) return a;
  std::string lhs = trim(e.substr(0, eq[0]));
  // An operator that binds less tightly than == would make `A == B` mean something else.
  auto loose = top_level(lhs, [&](size_t i) {
    char c = lhs[i];
    if (c == '?' || c == ',' || c == '|' || c == '^' || c == '&') return true;
    if (c == '!' && i + 1 < lhs.size() && lhs[i + 1] == '=') return true;
    return c == '=' && (i == 0 || std::string("=!<>").find(lhs[i - 1]) == std::string::npos) &&
           (i + 1 >= lhs.size() || lhs[i + 1] != '=');
  });
  auto expected = parse_cpp_literal(e.substr(eq[0] + 2));
  if (lhs.empty() || !loose.empty() || !expected) return a;
  a.lhs = lhs;
  a.expected = std::move(expected);
  return a;
}

bool same_value(const nlohmann::json& got, const nlohmann::json& expected) {
  auto numeric = [](const nlohmann::json& j) { return j.is_number() || j.is_boolean(); };
  if (numeric(got) && numeric(expected)) {
    auto as_double = [](const nlohmann::json& j) {
      return j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>();
    };
    if (got.is_number_integer() && expected.is_number_integer()) {
      if (got.is_number_unsigned() || expected.is_number_unsigned())
        return got.is_number_unsigned() == expected.is_number_unsigned()
                   ? got.get<uint64_t>() == expected.get<uint64_t>()
                   : (got.is_number_unsigned()
                          ? expected.get<int64_t>() >= 0 &&
                                got.get<uint64_t>() == static_cast<uint64_t>(expected.get<int64_t>())
                          : got.get<int64_t>() >= 0 &&
                                static_cast<uint64_t>(got.get<int64_t>()) == expected.get<uint64_t>());
      return got.get<int64_t>() == expected.get<int64_t>();
    }
    return as_double(got) == as_double(expected);
  }
  if (got.is_array() && expected.is_array()) {
    if (got.size() != expected.size()) return false;
    for (size_t i = 0; i < got.size(); ++i)
      if (!same_value(got[i], expected[i])) return false;
    return true;
  }
  return got.type() == expected.type() && got == expected;
}

}  // namespace grpo::reward
