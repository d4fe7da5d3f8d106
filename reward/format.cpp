#include "reward/format.h"

#include <cstdio>
#include <set>
#include <utility>
#include <vector>

#include "common/utf8.h"
#include "reward/options.h"

namespace grpo::reward {
namespace {

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr std::string_view kAnswerOpen = "<answer>", kAnswerClose = "</answer>";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

int64_t count_of(std::string_view s, std::string_view needle) {
  int64_t n = 0;
  for (size_t p = s.find(needle); p != std::string_view::npos; p = s.find(needle, p + needle.size())) ++n;
  return n;
}

std::string fmt_double(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

// The completion without its <think>/<answer> tags (their letters are not the model's language).
std::string without_tags(std::string_view text) {
  std::string out(text);
  for (std::string_view tag : {kThinkOpen, kThinkClose, kAnswerOpen, kAnswerClose})
    for (size_t p; (p = out.find(tag)) != std::string::npos;) out.replace(p, tag.size(), " ");
  return out;
}

// ---- scripts -------------------------------------------------------------------------------

enum class Script {
  none,
  latin,
  greek,
  cyrillic,
  armenian,
  hebrew,
  arabic,
  devanagari,
  thai,
  hangul,
  hiragana,
  katakana,
  han
};

struct Range {
  char32_t lo, hi;
  Script script;
};

// Letters of the scripts we classify (digits, punctuation and symbols inside these blocks are
// excluded where they would matter: × ÷, Arabic-Indic digits).
constexpr Range kScriptRanges[] = {
    {0x41, 0x5A, Script::latin},        {0x61, 0x7A, Script::latin},        {0xAA, 0xAA, Script::latin},
    {0xBA, 0xBA, Script::latin},        {0xC0, 0xD6, Script::latin},        {0xD8, 0xF6, Script::latin},
    {0xF8, 0x24F, Script::latin},       {0x370, 0x3FF, Script::greek},      {0x400, 0x52F, Script::cyrillic},
    {0x531, 0x58F, Script::armenian},   {0x5D0, 0x5F2, Script::hebrew},     {0x620, 0x64A, Script::arabic},
    {0x66E, 0x6D3, Script::arabic},     {0x6FA, 0x6FF, Script::arabic},     {0x750, 0x77F, Script::arabic},
    {0x904, 0x939, Script::devanagari}, {0x958, 0x961, Script::devanagari}, {0xE01, 0xE30, Script::thai},
    {0x1100, 0x11FF, Script::hangul},   {0x1E00, 0x1EFF, Script::latin},    {0x1F00, 0x1FFF, Script::greek},
    {0x2C60, 0x2C7F, Script::latin},    {0x3041, 0x3096, Script::hiragana}, {0x30A1, 0x30FA, Script::katakana},
    {0x3130, 0x318F, Script::hangul},   {0x31F0, 0x31FF, Script::katakana}, {0x3400, 0x4DBF, Script::han},
    {0x4E00, 0x9FFF, Script::han},      {0xA640, 0xA69F, Script::cyrillic}, {0xA720, 0xA7FF, Script::latin},
    {0xAC00, 0xD7AF, Script::hangul},   {0xF900, 0xFAFF, Script::han},      {0xFF21, 0xFF3A, Script::latin},
    {0xFF41, 0xFF5A, Script::latin},    {0xFF66, 0xFF9D, Script::katakana}, {0x20000, 0x2FA1F, Script::han},
};

Script script_of(char32_t cp) {
  for (const auto& r : kScriptRanges)
    if (cp >= r.lo && cp <= r.hi) return r.script;
  return Script::none;
}

bool is_combining_mark(char32_t cp) { return cp >= 0x300 && cp <= 0x36F; }

// Scripts written without spaces between words: every character counts as a word.
bool char_is_word(Script s) { return s == Script::han || s == Script::hiragana || s == Script::katakana; }

std::set<Script> target_scripts(const std::string& target) {
  static const std::vector<std::pair<std::set<std::string>, std::set<Script>>> table = {
      {{"en", "fr", "de", "es", "it", "pt", "nl", "pl", "tr", "vi", "id", "sv", "cs", "ro", "latin"}, {Script::latin}},
      {{"zh", "han"}, {Script::han}},
      {{"ja"}, {Script::han, Script::hiragana, Script::katakana}},
      {{"ko", "hangul"}, {Script::hangul}},
      {{"ru", "uk", "bg", "sr", "cyrillic"}, {Script::cyrillic}},
      {{"el", "greek"}, {Script::greek}},
      {{"ar", "fa", "arabic"}, {Script::arabic}},
      {{"he", "hebrew"}, {Script::hebrew}},
      {{"hi", "devanagari"}, {Script::devanagari}},
      {{"th", "thai"}, {Script::thai}},
      {{"hy", "armenian"}, {Script::armenian}},
      {{"hiragana"}, {Script::hiragana}},
      {{"katakana"}, {Script::katakana}},
  };
  for (const auto& [names, scripts] : table)
    if (names.count(target)) return scripts;
  throw InputError("language target '" + target +
                   "' is not known (a language code such as en, zh, ja, ko, ru, or a script name such as "
                   "latin, han, cyrillic)");
}

// ---- verifiers -----------------------------------------------------------------------------

R1FormatOptions parse_format_options(const OptionReader& o) {
  o.require_known({"answer_tags", "single_think", "prompt_opens_think"});
  R1FormatOptions f;
  f.answer_tags = o.get_bool("answer_tags", f.answer_tags);
  f.single_think = o.get_bool("single_think", f.single_think);
  f.prompt_opens_think = o.get_bool("prompt_opens_think", f.prompt_opens_think);
  return f;
}

struct LanguageOptions {
  std::set<Script> scripts;
  std::string target = "en";
  LanguageUnit unit = LanguageUnit::words;
  bool whole_completion = false;
  bool prompt_opens_think = false;
};

LanguageOptions parse_language_options(const OptionReader& o) {
  o.require_known({"target", "unit", "scope", "prompt_opens_think"});
  LanguageOptions l;
  l.target = o.get_string("target", l.target);
  try {
    l.scripts = target_scripts(l.target);
  } catch (const InputError& e) {
    o.fail("target", e.what());
  }
  std::string unit = o.get_string("unit", "words");
  if (unit != "words" && unit != "letters") o.fail("unit", "expected \"words\" or \"letters\", got \"" + unit + "\"");
  l.unit = unit == "words" ? LanguageUnit::words : LanguageUnit::letters;
  std::string scope = o.get_string("scope", "reasoning");
  if (scope != "reasoning" && scope != "all")
    o.fail("scope", "expected \"reasoning\" or \"all\", got \"" + scope + "\"");
  l.whole_completion = scope == "all";
  l.prompt_opens_think = o.get_bool("prompt_opens_think", false);
  return l;
}

struct OverlongOptions {
  int64_t max_len = 0, cache = 0;
  std::string unit = "auto";
};

// max_len and cache may be absent from the server defaults (0 = not set); a request then has to
// bring them, which verify() checks.
OverlongOptions parse_overlong_options(const OptionReader& o) {
  o.require_known({"max_len", "cache", "length_unit"});
  OverlongOptions v;
  if (o.has("max_len") != o.has("cache"))
    o.fail(o.has("max_len") ? "cache" : "max_len",
           "required together with " + std::string(o.has("max_len") ? "max_len" : "cache"));
  if (o.has("max_len")) {
    v.max_len = o.require_int("max_len");
    v.cache = o.require_int("cache");
    if (v.max_len <= 0) o.fail("max_len", "must be positive, got " + std::to_string(v.max_len));
    if (v.cache <= 0 || v.cache > v.max_len)
      o.fail("cache", "must be in (0, max_len=" + std::to_string(v.max_len) + "], got " + std::to_string(v.cache));
  }
  v.unit = o.get_string("length_unit", v.unit);
  if (v.unit != "auto" && v.unit != "tokens" && v.unit != "words" && v.unit != "chars")
    o.fail("length_unit", "expected auto, tokens, words or chars, got \"" + v.unit + "\"");
  return v;
}

// A verifier's options: the server defaults parsed once at construction (so a bad config fails at
// startup), re-parsed with the request's options merged over them when a request carries any.
template <class Options, Options (*Parse)(const OptionReader&)>
class ParsedOptions {
 public:
  ParsedOptions(std::string name, const nlohmann::json& defaults)
      : name_(std::move(name)), defaults_(defaults), parsed_(Parse(OptionReader(name_, defaults))) {}
  Options for_request(const VerifyRequest& r) const {
    if (r.options.is_null() || (r.options.is_object() && r.options.empty())) return parsed_;
    return Parse(OptionReader(name_, defaults_, r.options));
  }

 private:
  std::string name_;
  nlohmann::json defaults_;
  Options parsed_;
};

class FormatVerifier : public Verifier {
 public:
  explicit FormatVerifier(const nlohmann::json& defaults) : options_("format", defaults) {}
  std::string name() const override { return "format"; }
  std::string description() const override {
    return "R1 format reward: 1 for <think>reasoning</think> then a non-empty answer, else 0";
  }
  VerifyResult verify(const VerifyRequest& r) const override {
    R1Format f = check_r1_format(r.completion, options_.for_request(r));
    VerifyResult out;
    out.reward = f.ok ? 1.0 : 0.0;
    out.correct = f.ok;
    out.components["format"] = out.reward;
    out.reason = f.reason;
    out.extracted = f.answer;
    return out;
  }

 private:
  ParsedOptions<R1FormatOptions, parse_format_options> options_;
};

class LanguageVerifier : public Verifier {
 public:
  explicit LanguageVerifier(const nlohmann::json& defaults) : options_("language", defaults) {}
  std::string name() const override { return "language"; }
  std::string description() const override {
    return "language consistency: share of the target language's words in the reasoning (0..1)";
  }
  VerifyResult verify(const VerifyRequest& r) const override {
    LanguageOptions o = options_.for_request(r);
    LanguageShare s = o.whole_completion
                          ? language_share(without_tags(r.completion), o.target, o.unit)
                          : language_share(reasoning_text(r.completion, o.prompt_opens_think), o.target, o.unit);
    VerifyResult out;
    out.reward = s.share();
    out.correct = s.total > 0 && s.target == s.total;
    out.components["language"] = out.reward;
    const char* unit = o.unit == LanguageUnit::words ? " words" : " letters";
    out.reason = s.total == 0 ? std::string("no letters in the") + (o.whole_completion ? " completion" : " reasoning")
                              : std::to_string(s.target) + "/" + std::to_string(s.total) + unit + " in " + o.target;
    return out;
  }

 private:
  ParsedOptions<LanguageOptions, parse_language_options> options_;
};

class OverlongVerifier : public Verifier {
 public:
  explicit OverlongVerifier(const nlohmann::json& defaults) : options_("overlong", defaults) {}
  std::string name() const override { return "overlong"; }
  std::string description() const override {
    return "DAPO soft overlong penalty: 0 up to max_len - cache, linear to -1 at max_len, -1 beyond";
  }
  VerifyResult verify(const VerifyRequest& r) const override {
    OverlongOptions o = options_.for_request(r);
    if (o.max_len == 0)
      throw InputError(
          "verifier 'overlong': max_len and cache are not set (configure verifiers.overlong or pass "
          "them in the request's options)");
    int64_t length;
    std::string unit = o.unit;
    if (unit == "auto") unit = r.completion_tokens > 0 ? "tokens" : "words";
    if (unit == "tokens") {
      if (r.completion_tokens <= 0)
        throw InputError("verifier 'overlong': length_unit 'tokens' needs the request's completion_tokens");
      length = r.completion_tokens;
    } else if (unit == "words") {
      length = count_words(r.completion);
    } else {
      length = static_cast<int64_t>(utf8::count_chars(r.completion));
    }
    VerifyResult out;
    out.reward = overlong_penalty(length, o.max_len, o.cache);
    out.correct = length <= o.max_len - o.cache;
    out.components["overlong"] = out.reward;
    out.reason = "length " + std::to_string(length) + " " + unit + ", free up to " +
                 std::to_string(o.max_len - o.cache) + ", max " + std::to_string(o.max_len) + ": " +
                 fmt_double(out.reward);
    return out;
  }

 private:
  ParsedOptions<OverlongOptions, parse_overlong_options> options_;
};

}  // namespace

R1Format check_r1_format(std::string_view text, const R1FormatOptions& o) {
  R1Format f;
  auto fail = [&](std::string why) {
    f.reason = std::move(why);
    return f;
  };
  const int64_t opens = count_of(text, kThinkOpen), closes = count_of(text, kThinkClose);
  size_t body = 0;  // where the first reasoning starts
  if (o.prompt_opens_think) {
    if (o.single_think && opens != 0) return fail("<think> inside the completion (the prompt opened it)");
  } else {
    size_t start = 0;
    while (start < text.size() && is_space(text[start])) ++start;
    if (text.substr(start, kThinkOpen.size()) != kThinkOpen) return fail("does not start with <think>");
    body = start + kThinkOpen.size();
    if (o.single_think && opens != 1)
      return fail(std::to_string(opens) + " <think> tags (exactly one think block expected)");
  }
  if (closes == 0) return fail("no closing </think>");
  if (o.single_think && closes != 1)
    return fail(std::to_string(closes) + " </think> tags (exactly one think block expected)");
  size_t close = text.find(kThinkClose, body);
  f.reasoning = std::string(text.substr(body, close - body));
  // With several think blocks allowed, they must alternate open/close; the answer follows the last.
  size_t rest_begin = close + kThinkClose.size();
  if (!o.single_think) {
    if (f.reasoning.find(kThinkOpen) != std::string::npos) return fail("nested <think> in the reasoning");
    for (;;) {
      size_t next_open = text.find(kThinkOpen, rest_begin);
      if (next_open == std::string_view::npos) break;
      size_t next_close = text.find(kThinkClose, next_open);
      if (next_close == std::string_view::npos) return fail("a later <think> is never closed");
      if (text.substr(rest_begin, next_open - rest_begin).find(kThinkClose) != std::string_view::npos)
        return fail("</think> without a matching <think>");
      rest_begin = next_close + kThinkClose.size();
    }
    if (text.substr(rest_begin).find(kThinkClose) != std::string_view::npos)
      return fail("</think> without a matching <think>");
  }
  std::string_view rest = trim(text.substr(rest_begin));
  const bool wrapped = rest.size() >= kAnswerOpen.size() + kAnswerClose.size() &&
                       rest.substr(0, kAnswerOpen.size()) == kAnswerOpen &&
                       rest.substr(rest.size() - kAnswerClose.size()) == kAnswerClose &&
                       count_of(rest, kAnswerOpen) == 1 && count_of(rest, kAnswerClose) == 1;
  if (o.answer_tags && !wrapped) {
    if (count_of(rest, kAnswerOpen) == 0) return fail("no <answer>…</answer> after </think>");
    return fail("the text after </think> is not exactly one <answer>…</answer> block");
  }
  if (wrapped) rest = trim(rest.substr(kAnswerOpen.size(), rest.size() - kAnswerOpen.size() - kAnswerClose.size()));
  if (rest.empty()) return fail("empty answer after </think>");
  f.answer = std::string(rest);
  f.ok = true;
  f.reason = "ok";
  return f;
}

std::string_view reasoning_text(std::string_view completion, bool prompt_opens_think) {
  size_t begin = 0;
  if (!prompt_opens_think) {
    size_t open = completion.find(kThinkOpen);
    if (open == std::string_view::npos) return completion;
    begin = open + kThinkOpen.size();
  }
  size_t close = completion.find(kThinkClose, begin);
  if (close == std::string_view::npos) return completion.substr(begin);  // unclosed: all of it
  return completion.substr(begin, close - begin);
}

LanguageShare language_share(std::string_view text, const std::string& target, LanguageUnit unit) {
  const std::set<Script> wanted = target_scripts(target);
  LanguageShare s;
  Script run = Script::none;  // script of the word being read (words unit)
  char32_t cp;
  for (size_t pos = 0; pos < text.size();) {
    pos += utf8::decode(text, pos, &cp);
    if (cp == utf8::kInvalid) cp = utf8::kReplacement;
    if (is_combining_mark(cp)) continue;  // accents belong to the letter before them
    Script sc = script_of(cp);
    if (sc == Script::none) {
      run = Script::none;
      continue;
    }
    bool counts = unit == LanguageUnit::letters || char_is_word(sc) || sc != run;
    run = char_is_word(sc) ? Script::none : sc;
    if (!counts) continue;
    ++s.total;
    if (wanted.count(sc)) ++s.target;
  }
  return s;
}

double overlong_penalty(int64_t length, int64_t max_len, int64_t cache) {
  if (max_len <= 0 || cache <= 0 || cache > max_len)
    throw InputError("overlong penalty: need 0 < cache <= max_len, got max_len=" + std::to_string(max_len) +
                     " cache=" + std::to_string(cache));
  const int64_t free_len = max_len - cache;
  if (length <= free_len) return 0.0;
  if (length <= max_len) return static_cast<double>(free_len - length) / static_cast<double>(cache);
  return -1.0;
}

int64_t count_words(std::string_view text) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : text) {
    if (is_space(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++n;
    }
  }
  return n;
}

std::unique_ptr<Verifier> make_format_verifier(const nlohmann::json& options) {
  return std::make_unique<FormatVerifier>(options);
}
std::unique_ptr<Verifier> make_language_verifier(const nlohmann::json& options) {
  return std::make_unique<LanguageVerifier>(options);
}
std::unique_ptr<Verifier> make_overlong_verifier(const nlohmann::json& options) {
  return std::make_unique<OverlongVerifier>(options);
}

}  // namespace grpo::reward
