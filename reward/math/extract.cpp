#include "reward/math/extract.h"

#include <algorithm>
#include <cctype>

namespace grpo::reward::math {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct Span {
  size_t start = 0, end = 0;  // the whole construct, delimiters included
  std::string_view content;
};

// Math environments in order of appearance. Linear: every search resumes after the last hit and
// a failed search is remembered.
std::vector<Span> find_math_envs(std::string_view t) {
  std::vector<Span> out;
  size_t n = t.size();
  // First '\n' at or after the last query; queries only move forward, so this stays linear.
  size_t next_nl = t.find('\n');
  auto newline_after = [&](size_t from) {
    if (next_nl < from) next_nl = t.find('\n', from);
    return next_nl;
  };
  bool no_dd = false, no_bracket = false, no_paren = false;
  size_t paren_close = 0;
  size_t i = 0;
  while (i < n) {
    char c = t[i];
    if (c == '\\' && i + 1 < n) {
      char d = t[i + 1];
      if (d == '[' && !no_bracket) {
        size_t close = t.find("\\]", i + 2);
        if (close == std::string_view::npos) {
          no_bracket = true;
        } else {
          out.push_back({i, close + 2, t.substr(i + 2, close - i - 2)});
          i = close + 2;
          continue;
        }
      } else if (d == '(' && !no_paren) {
        if (paren_close < i + 2) paren_close = t.find("\\)", i + 2);
        if (paren_close == std::string_view::npos) {
          no_paren = true;
        } else if (newline_after(i) > paren_close) {
          out.push_back({i, paren_close + 2, t.substr(i + 2, paren_close - i - 2)});
          i = paren_close + 2;
          continue;
        }
      }
      i += 2;
      continue;
    }
    if (c == '$') {
      if (i + 1 < n && t[i + 1] == '$') {
        if (!no_dd) {
          size_t close = t.find("$$", i + 2);
          if (close == std::string_view::npos) {
            no_dd = true;
          } else {
            out.push_back({i, close + 2, t.substr(i + 2, close - i - 2)});
            i = close + 2;
            continue;
          }
        }
        i += 2;
        continue;
      }
      // Inline: up to the next unescaped '$' on the same line.
      size_t j = i + 1;
      size_t close = std::string_view::npos;
      while (true) {
        size_t d = t.find('$', j);
        if (d == std::string_view::npos) break;
        if (t[d - 1] == '\\') {
          j = d + 1;
          continue;
        }
        close = d;
        break;
      }
      if (close != std::string_view::npos && close > i + 1 && newline_after(i) > close &&
          !(close + 1 < n && t[close + 1] == '$')) {
        out.push_back({i, close + 1, t.substr(i + 1, close - i - 1)});
        i = close + 1;
        continue;
      }
      ++i;
      continue;
    }
    ++i;
  }
  return out;
}

// Text between two answer pieces that makes them one answer: "and", "or", commas, spacing.
bool is_connector(std::string_view gap) {
  if (gap.size() > 80) return false;
  std::string g = lower(gap);
  bool has_and_or = false, has_other_word = false, has_digit = false;
  size_t i = 0;
  while (i < g.size()) {
    if (g[i] == '\\') {  // skip \quad, \text, \( ...
      ++i;
      while (i < g.size() && is_alpha(g[i])) ++i;
      continue;
    }
    if (is_digit(g[i])) has_digit = true;
    if (g[i] == '=') has_other_word = true;
    if (is_alpha(g[i])) {
      size_t j = i;
      while (j < g.size() && is_alpha(g[j])) ++j;
      std::string_view w(g.data() + i, j - i);
      static constexpr const char* kStop[] = {"answer",   "not",     "wrong",   "incorrect", "instead", "but",
                                              "actually", "however", "mistake", "correct",   "final",   "therefore",
                                              "thus",     "hence",   "wait",    "so",        "no"};
      if (std::any_of(std::begin(kStop), std::end(kStop), [&](const char* s) { return w == s; })) return false;
      if (w == "and" || w == "or")
        has_and_or = true;
      else
        has_other_word = true;
      i = j;
      continue;
    }
    ++i;
  }
  if (has_and_or) return true;
  return !has_other_word && !has_digit;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

// "%" / "\%" / "percent" / "pct" right after an answer piece.
bool followed_by_percent(std::string_view t, size_t pos) {
  while (pos < t.size() && (t[pos] == ' ' || t[pos] == '\t')) ++pos;
  std::string_view rest = t.substr(std::min(pos, t.size()));
  return starts_with_ci(rest, "%") || starts_with_ci(rest, "\\%") || starts_with_ci(rest, "percent") ||
         starts_with_ci(rest, "pct");
}

// \boxed{...}: content and the index just past it. `limit` bounds the scan.
struct Box {
  size_t start = 0, end = 0;
  std::string_view content;
  bool closed = true;  // false: no matching brace before the scan limit
};

std::optional<Box> parse_box(std::string_view t, size_t pos, size_t limit) {
  size_t name_len = t.compare(pos, 6, "\\boxed") == 0 ? 6 : 5;
  size_t j = pos + name_len;
  if (j < t.size() && is_alpha(t[j])) return std::nullopt;
  while (j < limit && (t[j] == ' ' || t[j] == '\t')) ++j;
  if (j >= limit) return std::nullopt;
  if (t[j] == '{') {
    int depth = 0;
    for (size_t k = j; k < limit; ++k) {
      if (t[k] == '\\' && k + 1 < limit) {
        ++k;
        continue;
      }
      if (t[k] == '{') ++depth;
      if (t[k] == '}' && --depth == 0) return Box{pos, k + 1, t.substr(j + 1, k - j - 1)};
    }
    return Box{pos, limit, t.substr(j + 1, limit - j - 1), false};  // unbalanced: the rest
  }
  size_t k = j;
  while (k < limit && !is_space(t[k]) && t[k] != '$') ++k;
  if (k == j) return std::nullopt;
  return Box{pos, k, t.substr(j, k - j)};
}

std::vector<size_t> find_box_starts(std::string_view t) {
  std::vector<size_t> starts;
  size_t i = t.find('\\');
  while (i != std::string_view::npos) {
    if (t.compare(i, 6, "\\boxed") == 0 || t.compare(i, 5, "\\fbox") == 0) starts.push_back(i);
    i = t.find('\\', i + 1);
  }
  return starts;
}

std::optional<Extraction> extract_boxed(std::string_view t) {
  std::vector<size_t> starts = find_box_starts(t);
  // The last box that parses; earlier ones are joined while the gap is a connector.
  std::vector<Box> picked;
  size_t k = starts.size();
  while (k > 0 && picked.empty()) {
    auto b = parse_box(t, starts[k - 1], t.size());
    --k;
    if (b) picked.push_back(*b);
  }
  if (picked.empty()) return std::nullopt;
  while (k > 0 && picked.size() < 16) {
    size_t s = starts[k - 1];
    --k;
    const Box& cur = picked.back();
    auto b = parse_box(t, s, cur.start);
    if (!b || !b->closed) break;  // an unclosed box swallows the current one
    if (!is_connector(t.substr(b->end, cur.start - b->end))) break;
    picked.push_back(*b);
  }
  Extraction e;
  e.method = "boxed";
  e.end = picked.front().end;
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) e.parts.emplace_back(it->content);
  if (followed_by_percent(t, picked.front().end)) e.parts.back() += "%";
  return e;
}

std::optional<Extraction> extract_last_latex(std::string_view t) {
  std::vector<Span> envs = find_math_envs(t);
  while (!envs.empty() && trim(envs.back().content).empty()) envs.pop_back();
  if (envs.empty()) return std::nullopt;
  std::vector<Span> picked{envs.back()};
  for (size_t k = envs.size() - 1; k > 0 && picked.size() < 16; --k) {
    const Span& prev = envs[k - 1];
    if (trim(prev.content).empty()) break;
    if (!is_connector(t.substr(prev.end, picked.back().start - prev.end))) break;
    picked.push_back(prev);
  }
  Extraction e;
  e.method = "last_latex";
  e.end = picked.front().end;
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) e.parts.emplace_back(it->content);
  if (followed_by_percent(t, picked.front().end)) e.parts.back() += "%";
  return e;
}

bool looks_plain(std::string_view s) {
  return s.find('\\') == std::string_view::npos && s.find('{') == std::string_view::npos;
}

// The sentence after "answer is" / "answer:".
std::optional<Extraction> extract_answer_is(std::string_view t, size_t max_bytes) {
  std::string low = lower(t);
  static constexpr const char* kTriggers[] = {"final answer is", "the answer is", "answer is",
                                              "final answer:",   "answer:",       "final answer"};
  size_t best_end = std::string::npos;
  for (const char* trig : kTriggers) {
    size_t p = low.rfind(trig);
    if (p == std::string::npos) continue;
    size_t end = p + std::string_view(trig).size();
    if (best_end == std::string::npos || end > best_end) best_end = end;
  }
  if (best_end == std::string::npos) return std::nullopt;
  size_t i = best_end;
  while (i < t.size() && (is_space(t[i]) || t[i] == ':' || t[i] == '*')) ++i;
  // Cut at the end of the sentence / line / "I hope", outside math.
  size_t start = i;
  size_t limit = std::min(t.size(), start + 2 * max_bytes + 16);
  bool in_inline = false, in_display = false;
  int braces = 0;
  size_t stop = limit;
  for (size_t k = start; k < limit; ++k) {
    char c = t[k];
    if (c == '\\' && k + 1 < limit) {
      char d = t[k + 1];
      if (d == '[') in_display = true;
      if (d == ']') in_display = false;
      if (d == '(') in_inline = true;
      if (d == ')') in_inline = false;
      ++k;
      continue;
    }
    if (c == '{') ++braces;
    if (c == '}') --braces;
    if (c == '$') {
      if (k + 1 < limit && t[k + 1] == '$') {
        in_display = !in_display;
        ++k;
      } else {
        in_inline = !in_inline;
      }
      continue;
    }
    bool in_math = in_inline || in_display || braces > 0;
    if (in_math) continue;
    if (c == '\n') {
      stop = k;
      break;
    }
    if (c == '.' && (k + 1 >= limit || is_space(t[k + 1])) &&
        !(k > start && is_digit(t[k - 1]) && k + 1 < limit && is_digit(t[k + 1]))) {
      stop = k;
      break;
    }
    if (starts_with_ci(t.substr(k), " i hope")) {
      stop = k;
      break;
    }
  }
  std::string_view tail = trim(t.substr(start, stop - start));
  while (!tail.empty() && (tail.back() == '*' || tail.back() == '.')) tail = trim(tail.substr(0, tail.size() - 1));
  if (tail.empty()) return std::nullopt;
  // "The largest $n$ is 34": the answer follows the last " is ".
  {
    std::string tl = lower(tail);
    size_t is_pos = tl.rfind(" is ");
    if (is_pos != std::string::npos && tl.find('$', is_pos) == std::string::npos) {
      std::string_view before = tail.substr(0, is_pos);
      size_t dollars = static_cast<size_t>(std::count(before.begin(), before.end(), '$'));
      if (dollars % 2 == 0) tail = trim(tail.substr(is_pos + 4));
    }
  }
  if (tail.empty()) return std::nullopt;
  if (tail.find("\\boxed") != std::string_view::npos || tail.find("\\fbox") != std::string_view::npos) {
    auto e = extract_boxed(tail);
    if (e) {
      e->method = "answer_is";
      e->end = stop;
      return e;
    }
  }
  if (auto e = extract_last_latex(tail)) {
    e->method = "answer_is";
    e->end = stop;
    return e;
  }
  Extraction e;
  e.method = "answer_is";
  e.parts.emplace_back(tail);
  e.plain = looks_plain(tail);
  e.math_like = std::any_of(tail.begin(), tail.end(), is_digit) || !e.plain;
  e.end = stop;
  return e;
}

std::optional<Extraction> extract_answer_tag(std::string_view t) {
  size_t open = t.rfind("<answer>");
  if (open == std::string_view::npos) return std::nullopt;
  size_t close = t.find("</answer>", open);
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view content = trim(t.substr(open + 8, close - open - 8));
  if (content.empty()) return std::nullopt;
  std::optional<Extraction> e;
  if (content.find("\\boxed") != std::string_view::npos || content.find("\\fbox") != std::string_view::npos)
    e = extract_boxed(content);
  if (!e && (content.find('$') != std::string_view::npos || content.find("\\(") != std::string_view::npos ||
             content.find("\\[") != std::string_view::npos))
    e = extract_last_latex(content);
  if (!e) {
    e = Extraction{};
    e->parts.emplace_back(content);
    e->plain = looks_plain(content);
  }
  e->method = "answer_tag";
  e->end = close;
  return e;
}

// The last number-like token: 1,000.99 / 2,74 / -10/9 / .5 / 28 percent / \frac{1}{2}.
std::optional<Extraction> extract_last_number(std::string_view t) {
  size_t n = t.size();
  std::optional<std::pair<size_t, size_t>> last;
  bool last_percent = false;
  size_t i = 0;
  while (i < n) {
    char c = t[i];
    bool starts = is_digit(c) || (c == '.' && i + 1 < n && is_digit(t[i + 1]));
    if (starts && i > 0) {
      char p = t[i - 1];
      if (is_alnum(p) || p == '_' || p == '^' || p == '.' || p == '\\' || p == ',') starts = false;
      if (static_cast<unsigned char>(p) >= 0x80) starts = true;
    }
    if (!starts) {
      if (c == '\\' && t.compare(i, 6, "\\frac{") == 0) {
        // \frac{12}{5} with plain integer parts
        size_t j = i + 6, a = j;
        if (j < n && t[j] == '-') ++j;
        while (j < n && is_digit(t[j])) ++j;
        if (j > a && j + 1 < n && t[j] == '}' && t[j + 1] == '{') {
          size_t b = j + 2, k = b;
          while (k < n && is_digit(t[k])) ++k;
          if (k > b && k < n && t[k] == '}') {
            size_t s = (i > 0 && t[i - 1] == '-') ? i - 1 : i;
            last = {s, k + 1};
            last_percent = followed_by_percent(t, k + 1);
            i = k + 1;
            continue;
          }
        }
      }
      ++i;
      continue;
    }
    size_t s = i, j = i;
    while (j < n && is_digit(t[j])) ++j;
    size_t int_len = j - i;
    // thousands groups ,ddd
    size_t k = j;
    bool grouped = false;
    char sep = 0;  // thousands separator: ',' or a single space, used consistently
    while (int_len > 0 && int_len <= 3 && t[i] != '0' && k + 3 < n && (t[k] == ',' || t[k] == ' ') &&
           (sep == 0 || t[k] == sep) && is_digit(t[k + 1]) && is_digit(t[k + 2]) && is_digit(t[k + 3]) &&
           (k + 4 >= n || !is_digit(t[k + 4]))) {
      sep = t[k];
      k += 4;
      grouped = true;
    }
    j = k;
    if (j + 1 < n && (t[j] == '.' || (!grouped && t[j] == ',')) && is_digit(t[j + 1])) {
      ++j;
      while (j < n && is_digit(t[j])) ++j;
    }
    if (j + 1 < n && t[j] == '/' && is_digit(t[j + 1])) {
      ++j;
      while (j < n && is_digit(t[j])) ++j;
    }
    if (s > 0 && t[s - 1] == '-' && (s == 1 || !is_alnum(t[s - 2]))) --s;
    last = {s, j};
    last_percent = followed_by_percent(t, j);
    i = j;
  }
  if (!last) return std::nullopt;
  Extraction e;
  e.method = "last_number";
  e.end = last->second;
  std::string part(t.substr(last->first, last->second - last->first));
  if (last_percent) part += "%";
  e.plain = part.find('\\') == std::string::npos;
  e.parts.push_back(std::move(part));
  return e;
}

std::optional<Extraction> run_method(ExtractMethod m, std::string_view t, size_t max_bytes) {
  switch (m) {
    case ExtractMethod::Boxed: return extract_boxed(t);
    case ExtractMethod::AnswerTag: return extract_answer_tag(t);
    case ExtractMethod::AnswerIs: return extract_answer_is(t, max_bytes);
    case ExtractMethod::LastLatex: return extract_last_latex(t);
    case ExtractMethod::LastNumber: return extract_last_number(t);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ExtractMethod> parse_extract_method(std::string_view name) {
  if (name == "boxed") return ExtractMethod::Boxed;
  if (name == "answer_tag") return ExtractMethod::AnswerTag;
  if (name == "answer_is") return ExtractMethod::AnswerIs;
  if (name == "last_latex") return ExtractMethod::LastLatex;
  if (name == "last_number") return ExtractMethod::LastNumber;
  return std::nullopt;
}

const char* extract_method_name(ExtractMethod m) {
  switch (m) {
    case ExtractMethod::Boxed: return "boxed";
    case ExtractMethod::AnswerTag: return "answer_tag";
    case ExtractMethod::AnswerIs: return "answer_is";
    case ExtractMethod::LastLatex: return "last_latex";
    case ExtractMethod::LastNumber: return "last_number";
  }
  return "?";
}

std::string Extraction::text() const {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) s += ", ";
    s += parts[i];
  }
  return s;
}

std::optional<std::string_view> final_section(std::string_view completion) {
  size_t close = completion.rfind("</think>");
  std::string_view rest = close == std::string_view::npos ? completion : completion.substr(close + 8);
  if (rest.find("<think>") != std::string_view::npos) return std::nullopt;  // a think block left open
  return rest;
}

namespace {

int tier(ExtractMethod m) {
  switch (m) {
    case ExtractMethod::Boxed:
    case ExtractMethod::AnswerIs: return 1;
    case ExtractMethod::AnswerTag: return 2;
    case ExtractMethod::LastLatex:
    case ExtractMethod::LastNumber: return 3;
  }
  return 0;
}

}  // namespace

ExtractResult extract_answer(std::string_view text, const ExtractOptions& options) {
  ExtractResult r;
  const auto& order = options.order;
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && tier(order[j]) == tier(order[i])) ++j;
    std::optional<Extraction> best;
    for (size_t k = i; k < j; ++k) {
      auto e = run_method(order[k], text, options.max_answer_bytes);
      if (!e) continue;
      // Words after "answer is" do not override a box found further on.
      bool better = !best || (e->end > best->end && (e->math_like || !best->math_like));
      if (best && !e->math_like && best->math_like) better = false;
      if (better) best = std::move(e);
    }
    i = j;
    if (!best) continue;
    for (auto& p : best->parts) {
      if (p.size() > options.max_answer_bytes) {
        r.oversized = true;
        p.resize(options.max_answer_bytes);
      }
    }
    r.answer = std::move(best);
    return r;
  }
  return r;
}

Extraction extract_reference(std::string_view reference, const ExtractOptions& options) {
  std::string_view ref = trim(reference);
  bool has_math_delims = ref.find('$') != std::string_view::npos || ref.find("\\(") != std::string_view::npos ||
                         ref.find("\\[") != std::string_view::npos;
  bool has_box = ref.find("\\boxed") != std::string_view::npos || ref.find("\\fbox") != std::string_view::npos;
  for (ExtractMethod m : options.order) {
    if (m == ExtractMethod::LastNumber) continue;
    if (m == ExtractMethod::Boxed && !has_box) continue;
    if ((m == ExtractMethod::AnswerIs || m == ExtractMethod::LastLatex) && !has_math_delims) continue;
    if (auto e = run_method(m, ref, options.max_answer_bytes)) return *e;
  }
  Extraction e;
  e.method = "whole";
  e.parts.emplace_back(ref);
  return e;
}

std::optional<char> extract_choice(std::string_view text, std::string_view letters) {
  auto is_choice = [&](char c) { return letters.find(c) != std::string_view::npos; };
  auto letter_at = [&](std::string_view s) -> std::optional<char> {
    size_t i = 0;
    while (i < s.size() && (is_space(s[i]) || s[i] == '*' || s[i] == '(' || s[i] == '$' || s[i] == '{' || s[i] == ':'))
      ++i;
    for (const char* wrap : {"\\boxed{", "\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{"}) {
      std::string_view w(wrap);
      if (s.compare(i, w.size(), w) == 0) {
        i += w.size();
        while (i < s.size() && (s[i] == '(' || is_space(s[i]))) ++i;
      }
    }
    if (i < s.size() && is_choice(s[i]) && (i + 1 >= s.size() || !is_alpha(s[i + 1]))) return s[i];
    return std::nullopt;
  };
  std::string low = lower(text);
  size_t best = std::string::npos;
  for (const char* trig : {"answer is", "answer:", "answer is:"}) {
    size_t p = low.rfind(trig);
    if (p != std::string::npos && (best == std::string::npos || p + std::string_view(trig).size() > best))
      best = p + std::string_view(trig).size();
  }
  if (best != std::string::npos)
    if (auto c = letter_at(text.substr(best))) return c;
  if (auto c = letter_at(text.substr(0, std::min<size_t>(text.size(), 16)))) {
    size_t i = 0;
    while (i < text.size() && (is_space(text[i]) || text[i] == '*' || text[i] == '(')) ++i;
    if (i + 1 >= text.size() || text[i + 1] == '.' || text[i + 1] == ')' || text[i + 1] == ':' || text[i + 1] == ',' ||
        is_space(text[i + 1]) || text[i + 1] == '*')
      return c;
  }
  // The last standalone letter: (^|\s)(**)?X(**)?([.,:)\s]|$)
  for (size_t k = text.size(); k > 0; --k) {
    size_t i = k - 1;
    if (!is_choice(text[i])) continue;
    size_t l = i;
    while (l > 0 && (text[l - 1] == '*' || text[l - 1] == '(')) --l;
    bool left_ok = l == 0 || is_space(text[l - 1]);
    size_t r = i + 1;
    while (r < text.size() && (text[r] == '*' || text[r] == ')')) ++r;
    bool right_ok = r >= text.size() || text[r] == '.' || text[r] == ',' || text[r] == ':' || is_space(text[r]);
    if (left_ok && right_ok) return text[i];
  }
  return std::nullopt;
}

}  // namespace grpo::reward::math
