// The helpers of the code verifier's C++ test driver (reward/code/harness.h), placed before the
// solution in main.cpp. For test K the driver writes one record line to a private copy of stdout:
//   "@grpo K value <json>"   the value of A in `assert(A == B);` (B stays on the host; A must be
//                            a number, string, pair, tuple, optional or range of such)
//   "@grpo K bool <0|1>"     any other single assert(E): bool(E)
//   "@grpo K block <0|1>"    any other test: whether its asserts held
//   "@grpo K error <what>"   it threw
// and "@grpo done" at the end. Fd 1 then points at stderr, so the solution's prints never mix in.
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace grpo_harness {

inline FILE*& out() {
  static FILE* f = nullptr;
  return f;
}

// What the driver can write as JSON: numbers, bools, chars and strings (as strings), pairs,
// tuples and anything with begin()/end() (as arrays; a map as [key, value] pairs).
template <class T, class = void>
struct is_range : std::false_type {};
template <class T>
struct is_range<
    T, std::void_t<decltype(std::begin(std::declval<const T&>())), decltype(std::end(std::declval<const T&>()))>>
    : std::true_type {};
template <class T>
struct is_tuple : std::false_type {};
template <class... E>
struct is_tuple<std::tuple<E...>> : std::true_type {};
template <class A, class B>
struct is_tuple<std::pair<A, B>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
constexpr bool printable();
template <class T, size_t... I>
constexpr bool all_printable(std::index_sequence<I...>) {
  return (printable<std::tuple_element_t<I, T>>() && ...);
}
template <class T>
constexpr bool printable() {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  if constexpr (std::is_arithmetic_v<U> || std::is_same_v<U, std::string> || std::is_same_v<U, const char*> ||
                std::is_same_v<U, char*>)
    return true;
  else if constexpr (is_tuple<U>::value)
    return all_printable<U>(std::make_index_sequence<std::tuple_size_v<U>>());
  else if constexpr (is_optional<U>::value)
    return printable<typename U::value_type>();
  else if constexpr (is_range<U>::value)
    return printable<decltype(*std::begin(std::declval<const U&>()))>();
  else
    return false;
}

inline void put_string(std::string& o, const char* s, size_t n) {
  o += '"';
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  }
  o += '"';
}

template <class T>
void put(std::string& o, const T& v) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  if constexpr (std::is_same_v<U, bool>) {
    o += v ? "true" : "false";
  } else if constexpr (std::is_same_v<U, char>) {
    put_string(o, &v, 1);
  } else if constexpr (std::is_integral_v<U>) {
    o += std::to_string(v);
  } else if constexpr (std::is_floating_point_v<U>) {
    char buf[40];
    double d = static_cast<double>(v);
    if (d != d)
      o += "\"nan\"";
    else if (d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
      o += d > 0 ? "\"inf\"" : "\"-inf\"";
    else {
      std::snprintf(buf, sizeof buf, "%.17g", d);
      o += buf;
    }
  } else if constexpr (std::is_same_v<U, std::string>) {
    put_string(o, v.data(), v.size());
  } else if constexpr (std::is_same_v<U, const char*> || std::is_same_v<U, char*>) {
    put_string(o, v, std::strlen(v));
  } else if constexpr (is_optional<U>::value) {
    if (v)
      put(o, *v);
    else
      o += "null";
  } else if constexpr (is_tuple<U>::value) {
    o += '[';
    std::apply(
        [&](const auto&... e) {
          size_t i = 0;
          ((o += i++ ? "," : "", put(o, e)), ...);
        },
        v);
    o += ']';
  } else {
    o += '[';
    bool first = true;
    for (const auto& e : v) {
      if (!first) o += ',';
      first = false;
      put(o, e);
    }
    o += ']';
  }
}

inline void record(int k, const char* kind, const std::string& text) {
  std::fprintf(out(), "\n@grpo %d %s %s\n", k, kind, text.c_str());
  std::fflush(out());
}

inline std::string what(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return std::string("exception: ") + x.what();
  } catch (...) {
    return "exception of a type that is not std::exception";
  }
}

struct Failed {
  const char* expression;
};
[[noreturn]] inline void failed(const char* expression) { throw Failed{expression}; }

// assert(A == B) with B on the host: A's value (a type that cannot be printed fails the test).
template <class Value>
void value(int k, Value a) {
  try {
    auto v = a();
    if constexpr (printable<decltype(v)>()) {
      std::string o;
      put(o, v);
      record(k, "value", o);
    } else {
      record(k, "error", "the value has a type the harness cannot print");
    }
  } catch (...) {
    record(k, "error", what(std::current_exception()));
  }
}

template <class Test>
void check(int k, const char* kind, Test t) {
  try {
    record(k, kind, t() ? "1" : "0");
  } catch (const Failed&) {
    record(k, kind, "0");
  } catch (...) {
    record(k, "error", what(std::current_exception()));
  }
}

inline void begin() {
  std::fflush(stdout);
  out() = fdopen(dup(1), "w");
  dup2(2, 1);
}

inline void end() { std::fprintf(out(), "\n@grpo done\n"), std::fflush(out()); }

}  // namespace grpo_harness
