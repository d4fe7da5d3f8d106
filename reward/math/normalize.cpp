#include "reward/math/normalize.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>
#include <vector>

namespace grpo::reward::math {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Replaces the command \name (not followed by a letter, so \in does not eat \infty) by `to`.
void replace_command(std::string& s, std::string_view name, std::string_view to) {
  std::string out;
  size_t pos = 0, copied = 0;
  while (true) {
    size_t hit = s.find(name, pos);
    if (hit == std::string::npos) break;
    size_t end = hit + name.size();
    if (end < s.size() && is_alpha(s[end]) && is_alpha(name.back())) {
      pos = hit + 1;
      continue;
    }
    out.append(s, copied, hit - copied);
    out.append(to);
    copied = pos = end;
  }
  if (copied == 0) return;
  out.append(s, copied, std::string::npos);
  s = std::move(out);
}

// Index just past the brace group starting at s[open] == '{', or npos if unbalanced.
size_t match_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string::npos;
}

// Commands that JSON double-escaping turns into "\\name"; those get their single backslash back.
constexpr const char* kKnownCommands[] = {
    "frac",   "dfrac",  "tfrac",  "cfrac", "sqrt",  "boxed", "left", "right", "pi",    "text",     "textbf",
    "mathrm", "mathbf", "cdot",   "times", "infty", "leq",   "geq",  "le",    "ge",    "neq",      "ne",
    "cup",    "pm",     "mp",     "begin", "end",   "sin",   "cos",  "tan",   "log",   "ln",       "circ",
    "div",    "in",     "approx", "alpha", "beta",  "theta", "mbox", "quad",  "qquad", "emptyset", "binom"};

void collapse_double_backslash_commands(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    bool exactly_two = i + 2 < s.size() && s[i] == '\\' && s[i + 1] == '\\' && (i == 0 || s[i - 1] != '\\');
    if (exactly_two && is_alpha(s[i + 2])) {
      size_t e = i + 2;
      while (e < s.size() && is_alpha(s[e])) ++e;
      std::string_view word(s.data() + i + 2, e - i - 2);
      bool known =
          std::any_of(std::begin(kKnownCommands), std::end(kKnownCommands), [&](const char* k) { return word == k; });
      if (known) {
        out.push_back('\\');
        i += 1;  // skip one backslash; the loop copies the second
        continue;
      }
    }
    out.push_back(s[i]);
  }
  s = std::move(out);
}

// Drops unescaped $ and the \( \) \[ \] delimiters that survive inside an extracted answer.
void strip_math_delimiters(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[i + 1];
      if (n == '(' || n == ')' || n == '[' || n == ']') {
        out.push_back(' ');
        ++i;
        continue;
      }
      if (n == '$') {  // an escaped dollar is a currency sign: drop it
        ++i;
        continue;
      }
      out.push_back(s[i]);
      out.push_back(n);
      ++i;
      continue;
    }
    if (s[i] == '$') {
      out.push_back(' ');
      continue;
    }
    out.push_back(s[i]);
  }
  s = std::move(out);
}

// \, \; \: \> \  and ~ become spaces, \! disappears; "\\" (a row break) is left alone.
void replace_spacing(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[i + 1];
      if (n == '\\') {
        out += "\\\\";
        ++i;
        continue;
      }
      if (n == ',' || n == ';' || n == ':' || n == '>' || n == ' ') {
        out.push_back(' ');
        ++i;
        continue;
      }
      if (n == '!') {
        ++i;
        continue;
      }
    }
    out.push_back(s[i] == '~' ? ' ' : s[i]);
  }
  s = std::move(out);
}

// 1{,}000, 1,\!000 and 1\,000 are thousands separators when three digits follow.
void join_explicit_thousands(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    bool after_digit = !out.empty() && is_digit(out.back());
    if (after_digit) {
      size_t j = i;
      while (j < s.size() && s[j] == ' ') ++j;
      size_t k = std::string::npos;
      if (s.compare(j, 3, "{,}") == 0 || s.compare(j, 3, ",\\!") == 0)
        k = j + 3;
      else if (s.compare(j, 4, "{, }") == 0)
        k = j + 4;
      else if (s.compare(j, 2, "\\,") == 0)
        k = j + 2;
      if (k != std::string::npos) {
        while (k < s.size() && s[k] == ' ') ++k;
        if (k + 2 < s.size() && is_digit(s[k]) && is_digit(s[k + 1]) && is_digit(s[k + 2])) {
          i = k - 1;
          continue;
        }
      }
    }
    out.push_back(s[i]);
  }
  s = std::move(out);
}

// Joins digit groups d,ddd,ddd (two or more separators) anywhere: a list would not look like that.
void join_long_thousands(std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    bool start = is_digit(s[i]) && (i == 0 || (!is_digit(s[i - 1]) && s[i - 1] != '.' && s[i - 1] != ','));
    if (start) {
      size_t j = i;
      while (j < s.size() && is_digit(s[j])) ++j;
      size_t lead = j - i;
      size_t groups = 0, k = j;
      auto group_at = [&](size_t at) {
        return at + 3 < s.size() && s[at] == ',' && is_digit(s[at + 1]) && is_digit(s[at + 2]) && is_digit(s[at + 3]) &&
               (at + 4 >= s.size() || !is_digit(s[at + 4]));
      };
      while (group_at(k)) {
        ++groups;
        k += 4;
      }
      if (lead <= 3 && s[i] != '0' && groups >= 2) {
        for (size_t p = i; p < k; ++p)
          if (s[p] != ',') out.push_back(s[p]);
        i = k;
        continue;
      }
      out.append(s, i, j - i);
      i = j;
      continue;
    }
    out.push_back(s[i]);
    ++i;
  }
  s = std::move(out);
}

bool is_unit_phrase(std::string_view content, bool allow_single) {
  std::string words = lower(content);
  for (char& c : words)
    if (c == '/' || c == '^' || c == '{' || c == '}' || c == '.' || c == '-' || c == '2' || c == '3' || c == '\\')
      c = ' ';
  size_t count = 0;
  size_t i = 0;
  while (i < words.size()) {
    while (i < words.size() && words[i] == ' ') ++i;
    size_t j = i;
    while (j < words.size() && words[j] != ' ') ++j;
    if (j > i) {
      std::string_view w(words.data() + i, j - i);
      if (!is_unit_word(w, allow_single) && w != "square" && w != "sq" && w != "per" && w != "cubic" && w != "th" &&
          w != "st" && w != "nd" && w != "rd")
        return false;
      ++count;
    }
    i = j;
  }
  return count > 0;
}

// \text{cm}^2, \mbox{ dollars}, \mathrm{kg}: removed. \text{ and } / \text{or}: a list separator.
void strip_text_units(std::string& s) {
  static constexpr const char* kTextCommands[] = {"\\text", "\\textbf", "\\textit", "\\textrm", "\\textnormal",
                                                  "\\mbox", "\\mathrm", "\\textsf", "\\mathit"};
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    bool handled = false;
    if (s[i] == '\\') {
      for (const char* cmd : kTextCommands) {
        std::string_view c(cmd);
        if (s.compare(i, c.size(), c) != 0) continue;
        size_t j = i + c.size();
        if (j < s.size() && is_alpha(s[j])) continue;
        while (j < s.size() && s[j] == ' ') ++j;
        if (j >= s.size() || s[j] != '{') continue;
        size_t end = match_brace(s, j);
        if (end == std::string::npos) continue;
        std::string content = trim(std::string_view(s).substr(j + 1, end - j - 2));
        std::string lc = lower(content);
        if (lc == "and" || lc == "or" || lc == "," || lc == ", and" || lc == ",and") {
          out += " , ";
          i = end;
          handled = true;
          break;
        }
        bool unit = is_unit_phrase(content, true) && c != "\\mathit";
        // \mathrm{e} / \mathrm{i} / \mathrm{d} are math letters, not units.
        if (unit && content.size() == 1 && c == "\\mathrm") unit = false;
        if (unit) {
          size_t k = end;
          // a following ^2 / ^{2} / ^3 belongs to the unit
          size_t p = k;
          while (p < s.size() && s[p] == ' ') ++p;
          if (p < s.size() && s[p] == '^') {
            size_t q = p + 1;
            if (q < s.size() && is_digit(s[q]))
              k = q + 1;
            else if (q < s.size() && s[q] == '{') {
              size_t qe = match_brace(s, q);
              if (qe != std::string::npos) k = qe;
            }
          }
          out.push_back(' ');
          i = k;
          handled = true;
          break;
        }
      }
    }
    if (!handled) {
      out.push_back(s[i]);
      ++i;
    }
  }
  s = std::move(out);
}

void remove_degrees(std::string& s) {
  replace_all(s, "^{\\circ}", " ");
  replace_all(s, "^{ \\circ }", " ");
  replace_all(s, "^ {\\circ}", " ");
  replace_all(s, "^\\circ", " ");
  replace_command(s, "\\circ", " ");
  replace_command(s, "\\degree", " ");
}

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

// d{1,3}(<sep>ddd)+(.d+)?
bool is_grouped_number(std::string_view s, char sep) {
  size_t point = s.find('.');
  std::string_view integer = s.substr(0, point);
  if (point != std::string_view::npos && !all_digits(s.substr(point + 1))) return false;
  size_t first = integer.find(sep);
  if (first == std::string_view::npos || first == 0 || first > 3) return false;
  if (!all_digits(integer.substr(0, first)) || integer[0] == '0') return false;
  size_t i = first;
  while (i < integer.size()) {
    if (integer[i] != sep || i + 4 > integer.size() || !all_digits(integer.substr(i + 1, 3))) return false;
    i += 4;
  }
  return true;
}

// Whole-answer number formats: 1,000 (both modes); 1 000 and decimal comma 1,5 (plain text only).
void normalize_whole_number(std::string& s, bool plain) {
  std::string t = trim(s);
  bool negative = !t.empty() && t[0] == '-';
  std::string body = negative ? trim(std::string_view(t).substr(1)) : t;
  std::string sign = negative ? "-" : "";
  if (is_grouped_number(body, ',')) {
    body.erase(std::remove(body.begin(), body.end(), ','), body.end());
    s = sign + body;
    return;
  }
  if (!plain) return;
  if (is_grouped_number(body, ' ')) {
    body.erase(std::remove(body.begin(), body.end(), ' '), body.end());
    s = sign + body;
    return;
  }
  size_t comma = body.find(',');
  if (comma != std::string::npos && body.find(',', comma + 1) == std::string::npos &&
      all_digits(std::string_view(body).substr(0, comma)) && all_digits(std::string_view(body).substr(comma + 1))) {
    body[comma] = '.';
    s = sign + body;
  }
}

struct UnicodeMap {
  const char* from;
  const char* to;
};

constexpr UnicodeMap kUnicode[] = {
    {"\u2212", "-"},       {"\u2013", "-"},         {"\u2014", "-"},           {"\u00d7", "\\times "},
    {"\u00f7", "\\div "},  {"\u00b7", "\\cdot "},   {"\u22c5", "\\cdot "},     {"\u2219", "\\cdot "},
    {"\u221a", "\\sqrt"},  {"\u221b", "\\sqrt[3]"}, {"\u03c0", "\\pi "},       {"\u221e", "\\infty "},
    {"\u2264", "\\le "},   {"\u2a7d", "\\le "},     {"\u2265", "\\ge "},       {"\u2a7e", "\\ge "},
    {"\u2260", "\\ne "},   {"\u2248", "\\approx "}, {"\u222a", "\\cup "},      {"\u2229", "\\cap "},
    {"\u2208", "\\in "},   {"\u00b0", "^\\circ "},  {"\u00b2", "^2"},          {"\u00b3", "^3"},
    {"\u00b9", "^1"},      {"\u00bd", "(1/2)"},     {"\u00bc", "(1/4)"},       {"\u00be", "(3/4)"},
    {"\u00a0", " "},       {"\u2009", " "},         {"\u202f", " "},           {"\u2026", "\\dots "},
    {"\u00b1", "\\pm "},   {"\u2213", "\\mp "},     {"\u2205", "\\emptyset "}, {"\u20ac", " "},
    {"\u00a3", " "},       {"\u00a5", " "},         {"\u2032", "'"},           {"\uff0c", ","},
    {"\u3001", ","},       {"\u00ba", "^\\circ "},  {"\u211d", "\\mathbb{R}"}, {"\u03b1", "\\alpha "},
    {"\u03b2", "\\beta "}, {"\u03b8", "\\theta "},  {"\u2236", ":"},           {"\uff1a", ":"},
};

}  // namespace

std::string replace_unicode_math(std::string_view text) {
  std::string s(text);
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return s;
  for (const auto& m : kUnicode) replace_all(s, m.from, m.to);
  return s;
}

bool is_unit_word(std::string_view w, bool single_letters) {
  static constexpr const char* kUnits[] = {
      "mm",       "cm",         "km",          "dm",          "nm",          "meter",     "meters",     "metre",
      "metres",   "centimeter", "centimeters", "millimeter",  "millimeters", "kilometer", "kilometers", "inch",
      "inches",   "foot",       "feet",        "ft",          "yard",        "yards",     "yd",         "mile",
      "miles",    "unit",       "units",       "sq",          "kg",          "mg",        "gram",       "grams",
      "kilogram", "kilograms",  "pound",       "pounds",      "lb",          "lbs",       "ounce",      "ounces",
      "oz",       "ton",        "tons",        "tonne",       "tonnes",      "sec",       "secs",       "second",
      "seconds",  "min",        "mins",        "minute",      "minutes",     "hr",        "hrs",        "hour",
      "hours",    "day",        "days",        "week",        "weeks",       "month",     "months",     "year",
      "years",    "yr",         "yrs",         "dollar",      "dollars",     "cent",      "cents",      "yuan",
      "euro",     "euros",      "rupee",       "rupees",      "usd",         "liter",     "liters",     "litre",
      "litres",   "ml",         "milliliter",  "milliliters", "gallon",      "gallons",   "cup",        "cups",
      "mph",      "kmh",        "kph",         "degree",      "degrees",     "deg",       "radian",     "radians",
      "rad",      "cm2",        "cm3",         "m2",          "m3",          "km2",       "ms",         "kw",
      "kwh",      "watt",       "watts",       "volt",        "volts",       "people",    "persons",    "students",
      "ways",     "points",     "pages",       "times",       "mi",          "gm"};
  if (w.size() == 1) {
    return single_letters && (w == "m" || w == "g" || w == "s" || w == "h" || w == "l");
  }
  return std::any_of(std::begin(kUnits), std::end(kUnits), [&](const char* u) { return w == u; });
}

std::string normalize_answer(std::string_view answer, bool plain) {
  std::string s = replace_unicode_math(answer);
  collapse_double_backslash_commands(s);
  strip_math_delimiters(s);
  join_explicit_thousands(s);
  replace_all(s, "\\qquad", " ");
  replace_all(s, "\\quad", " ");  // also when glued to a letter: "\quadx_2" is " x_2"
  for (const char* sp : {"\\enspace", "\\thinspace", "\\medspace", "\\thickspace", "\\displaystyle", "\\textstyle",
                         "\\scriptstyle", "\\nolimits", "\\limits", "\\hfill", "\\hline"})
    replace_command(s, sp, " ");
  replace_spacing(s);
  // \left( \right] \left. \bigl( ...: keep the delimiter, drop the sizing.
  replace_all(s, "\\left.", " ");
  replace_all(s, "\\right.", " ");
  for (const char* sz : {"\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\biggl", "\\biggr", "\\Biggl",
                         "\\Biggr", "\\bigm", "\\big", "\\Big", "\\bigg", "\\Bigg"})
    replace_command(s, sz, "");
  replace_command(s, "\\dfrac", "\\frac");
  replace_command(s, "\\tfrac", "\\frac");
  replace_command(s, "\\cfrac", "\\frac");
  replace_command(s, "\\dbinom", "\\binom");
  replace_command(s, "\\tbinom", "\\binom");
  replace_all(s, "\\%", "%");
  replace_all(s, "\\#", " ");
  remove_degrees(s);
  strip_text_units(s);
  join_long_thousands(s);
  // Trailing sentence punctuation and leading colons are not part of the answer.
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ',' || s.back() == ';' || s.back() == ':')) {
    s.pop_back();
    s = trim(s);
  }
  while (!s.empty() && s.front() == ':') s = trim(std::string_view(s).substr(1));
  normalize_whole_number(s, plain);
  return s;
}

}  // namespace grpo::reward::math
