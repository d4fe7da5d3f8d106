// Which sampled completions `grpo distill` keeps (rejection sampling). Pure functions of a
// completion, its verdict and the earlier completions of its prompt.
//
// Each rejected sample is counted under the FIRST filter that rejects it, in this order:
//   1 incorrect   correct_only and the verifier's verdict is "not correct", or reward < min_reward
//   2 truncated   drop_truncated and generation stopped at the length limit (finish reason "length")
//   3 too_long    max_tokens > 0 and the completion has more tokens than that
//   4 format      require_format and the R1 format check fails (reward/format.h: <think>…</think>
//                 then an answer, wrapped in <answer> tags when answer_tags; the completion
//                 starts inside the think block when the template's generation prompt opens it)
//   5 language    min_language_share > 0 and the share of `language` words in the reasoning is
//                 below it (reward/format.h language_share; reasoning without any words passes)
//   6 repetition  max_repetition < 1 and repeated_ngram_fraction(token ids, repetition_ngram)
//                 exceeds it (degenerate loops)
//   7 duplicate   dedupe and an earlier completion of the same prompt that passed 1–6 has the
//                 same dedupe_key (case and whitespace normalised)
//   8 cap         per_prompt_cap > 0 and the prompt already has that many accepted completions
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/config.h"
#include "learner/scored_group.h"

namespace grpo {

enum class DistillVerdict {
  kAccepted,
  kIncorrect,
  kTruncated,
  kTooLong,
  kFormat,
  kLanguage,
  kRepetition,
  kDuplicate,
  kCap
};

// "accepted", "incorrect", "truncated", "too_long", "format", "language", "repetition",
// "duplicate", "cap".
const char* verdict_name(DistillVerdict v);
// The rejecting verdicts in the order they are checked (the list above).
const std::vector<DistillVerdict>& rejection_order();

struct DistillFilters {
  bool correct_only = true;
  double min_reward = -std::numeric_limits<double>::infinity();
  bool drop_truncated = true;
  int64_t max_tokens = 0;  // 0 = no limit
  bool require_format = true;
  bool answer_tags = false;       // the format needs <answer>…</answer> after </think>
  std::string language = "en";    // target of the language filter (reward/format.h targets)
  double min_language_share = 0;  // 0 = off
  double max_repetition = 1.0;    // 1 = off
  int64_t repetition_ngram = 4;
  bool dedupe = true;
  int64_t per_prompt_cap = 0;  // 0 = no cap

  // The `distill.filters` section plus distill.per_prompt_cap; InputError naming the key for
  // unknown keys and out-of-range values (an unknown language included).
  static DistillFilters from_config(const Config& filters, int64_t per_prompt_cap);
};

// 1 − distinct n-grams / n-grams over the token ids (0 when there are fewer than n tokens):
// 0 for text that never repeats an n-gram, → 1 for a loop. n >= 1.
double repeated_ngram_fraction(const std::vector<int32_t>& ids, int64_t n);

// The text duplicates are compared by: ASCII letters lower-cased, every run of whitespace one
// space, no leading or trailing whitespace.
std::string dedupe_key(std::string_view completion);

// Filters 1–6 for one completion (kAccepted when it passes them all).
DistillVerdict check_completion(const Completion& c, const DistillFilters& f, bool prompt_opens_think);

// One prompt's completions as they arrive (in a group, or over several groups of the same prompt):
// filters 1–6 for each, and the state filters 7–8 need (the dedupe keys seen, the count accepted).
// Not thread-safe: one prompt's completions, in order. Keeps a pointer to the filters, which must outlive it.
class PromptFilter {
 public:
  PromptFilter(const DistillFilters& f, bool prompt_opens_think) : f_(&f), opens_think_(prompt_opens_think) {}
  // The verdict of the prompt's next completion (all eight filters).
  DistillVerdict next(const Completion& c);
  int64_t accepted() const { return accepted_; }
  int64_t samples() const { return samples_; }  // completions seen so far

 private:
  const DistillFilters* f_;
  bool opens_think_;
  std::unordered_set<std::string> seen_;
  int64_t accepted_ = 0, samples_ = 0;
};

// The verdict of every completion of a prompt, in order (all eight filters).
std::vector<DistillVerdict> filter_completions(const std::vector<Completion>& completions, const DistillFilters& f,
                                               bool prompt_opens_think);

}  // namespace grpo
