// Shaping rewards that look at the form of a completion rather than its correctness:
//
//  * R1 format reward (DeepSeek-R1-Zero): `<think>reasoning</think>` then a non-empty answer,
//    optionally wrapped in `<answer>…</answer>`. Reward 1 when well-formed, else 0.
//  * Language consistency (DeepSeek-R1 §2.3.3): the share of the target language's words (or
//    letters) in the reasoning, in [0, 1].
//  * DAPO soft overlong penalty (Yu et al. 2025, eq. 13), in [-1, 0]:
//        R(L) = 0                          if L <= L_max - L_cache
//               (L_max - L_cache - L) / L_cache   if L_max - L_cache < L <= L_max
//               -1                         if L > L_max
//
// The pure functions below compute them; make_*_verifier wrap them as Verifiers (registered as
// "format", "language", "overlong" in reward/builtin_verifiers.cpp). Their options (server
// defaults, merged with the request's options):
//   format:   answer_tags (bool, false): require <answer>…</answer> after </think>
//             single_think (bool, true): exactly one think block
//             prompt_opens_think (bool, false): the prompt already ends with <think>, so the
//               completion starts inside the reasoning and only closes it
//   language: target (string, "en"): a language code (en, fr, de, es, zh, ja, ko, ru, el, ar, …)
//               or a script name (latin, han, cyrillic, greek, arabic, hebrew, hangul, …)
//             unit ("words" | "letters", "words")
//             scope ("reasoning" | "all", "reasoning"): the think block, or the whole completion
//               without its <think>/<answer> tags
//   overlong: max_len (int, required), cache (int, required, 0 < cache <= max_len)
//             length_unit ("auto" | "tokens" | "words" | "chars", "auto"): auto = the request's
//               completion_tokens when given, else whitespace-separated words
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "reward/verifier.h"

namespace grpo::reward {

struct R1FormatOptions {
  bool answer_tags = false;
  bool single_think = true;
  bool prompt_opens_think = false;
};

struct R1Format {
  bool ok = false;
  std::string reason;     // "ok" or the first rule broken, e.g. "no closing </think>"
  std::string reasoning;  // the think block's content (empty when not found)
  std::string answer;     // the answer after </think>, trimmed, without <answer> tags
};

R1Format check_r1_format(std::string_view completion, const R1FormatOptions& options = {});

// The reasoning a language reward looks at: the first think block's content, or the whole
// completion when it has none.
std::string_view reasoning_text(std::string_view completion, bool prompt_opens_think = false);

enum class LanguageUnit { words, letters };

struct LanguageShare {
  int64_t target = 0;  // words (letters) in the target language's scripts
  int64_t total = 0;   // words (letters) in any script we know; digits, symbols, spaces are not
  double share() const { return total == 0 ? 0.0 : static_cast<double>(target) / total; }
};

// A word is a maximal run of letters of one script, except Han, Hiragana and Katakana, where
// every character is a word (those scripts do not separate words by spaces).
// Throws InputError for an unknown target.
LanguageShare language_share(std::string_view text, const std::string& target, LanguageUnit unit);

double overlong_penalty(int64_t length, int64_t max_len, int64_t cache);

int64_t count_words(std::string_view text);  // whitespace-separated

std::unique_ptr<Verifier> make_format_verifier(const nlohmann::json& options);
std::unique_ptr<Verifier> make_language_verifier(const nlohmann::json& options);
std::unique_ptr<Verifier> make_overlong_verifier(const nlohmann::json& options);

}  // namespace grpo::reward
