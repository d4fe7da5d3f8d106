#include "distill/filters.h"

#include <cctype>
#include <set>

#include "reward/format.h"

namespace grpo {

const char* verdict_name(DistillVerdict v) {
  switch (v) {
    case DistillVerdict::kAccepted: return "accepted";
    case DistillVerdict::kIncorrect: return "incorrect";
    case DistillVerdict::kTruncated: return "truncated";
    case DistillVerdict::kTooLong: return "too_long";
    case DistillVerdict::kFormat: return "format";
    case DistillVerdict::kLanguage: return "language";
    case DistillVerdict::kRepetition: return "repetition";
    case DistillVerdict::kDuplicate: return "duplicate";
    case DistillVerdict::kCap: return "cap";
  }
  return "?";
}

const std::vector<DistillVerdict>& rejection_order() {
  static const std::vector<DistillVerdict> order = {
      DistillVerdict::kIncorrect, DistillVerdict::kTruncated,  DistillVerdict::kTooLong,   DistillVerdict::kFormat,
      DistillVerdict::kLanguage,  DistillVerdict::kRepetition, DistillVerdict::kDuplicate, DistillVerdict::kCap};
  return order;
}

DistillFilters DistillFilters::from_config(const Config& c, int64_t per_prompt_cap) {
  c.require_known({"correct_only", "min_reward", "drop_truncated", "max_tokens", "require_format", "answer_tags",
                   "language", "min_language_share", "max_repetition", "repetition_ngram", "dedupe"});
  DistillFilters f;
  f.correct_only = c.get<bool>("correct_only", f.correct_only);
  f.min_reward = c.get<double>("min_reward", f.min_reward);
  f.drop_truncated = c.get<bool>("drop_truncated", f.drop_truncated);
  f.max_tokens = c.get<int64_t>("max_tokens", f.max_tokens);
  if (f.max_tokens < 0) throw InputError(c.where("max_tokens") + ": expected >= 0 (0 = no limit)");
  f.require_format = c.get<bool>("require_format", f.require_format);
  f.answer_tags = c.get<bool>("answer_tags", f.answer_tags);
  f.language = c.get<std::string>("language", f.language);
  try {
    reward::language_share("", f.language, reward::LanguageUnit::words);
  } catch (const InputError& e) {
    throw InputError(c.where("language") + ": " + e.what());
  }
  f.min_language_share = c.get<double>("min_language_share", f.min_language_share);
  if (!(f.min_language_share >= 0 && f.min_language_share <= 1))
    throw InputError(c.where("min_language_share") + ": expected a share in [0, 1]");
  f.max_repetition = c.get<double>("max_repetition", f.max_repetition);
  if (!(f.max_repetition >= 0 && f.max_repetition <= 1))
    throw InputError(c.where("max_repetition") + ": expected a fraction in [0, 1] (1 = off)");
  f.repetition_ngram = c.get<int64_t>("repetition_ngram", f.repetition_ngram);
  if (f.repetition_ngram < 1) throw InputError(c.where("repetition_ngram") + ": expected >= 1");
  f.dedupe = c.get<bool>("dedupe", f.dedupe);
  f.per_prompt_cap = per_prompt_cap;
  return f;
}

double repeated_ngram_fraction(const std::vector<int32_t>& ids, int64_t n) {
  if (n < 1) throw InputError("repeated_ngram_fraction: n must be >= 1, got " + std::to_string(n));
  if (static_cast<int64_t>(ids.size()) < n) return 0.0;
  const size_t total = ids.size() - static_cast<size_t>(n) + 1;
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < total; ++i) distinct.emplace(ids.begin() + i, ids.begin() + i + n);
  return 1.0 - static_cast<double>(distinct.size()) / static_cast<double>(total);
}

std::string dedupe_key(std::string_view completion) {
  std::string out;
  bool space = false;
  for (char ch : completion) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (std::isspace(u)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(u < 0x80 ? std::tolower(u) : u);
  }
  return out;
}

DistillVerdict check_completion(const Completion& c, const DistillFilters& f, bool prompt_opens_think) {
  if ((f.correct_only && !c.correct) || c.reward < f.min_reward) return DistillVerdict::kIncorrect;
  if (f.drop_truncated && c.finish_reason == FinishReason::kLength) return DistillVerdict::kTruncated;
  if (f.max_tokens > 0 && static_cast<int64_t>(c.token_ids.size()) > f.max_tokens) return DistillVerdict::kTooLong;
  if (f.require_format) {
    reward::R1FormatOptions o;
    o.answer_tags = f.answer_tags;
    o.prompt_opens_think = prompt_opens_think;
    if (!reward::check_r1_format(c.text, o).ok) return DistillVerdict::kFormat;
  }
  if (f.min_language_share > 0) {
    const reward::LanguageShare s = reward::language_share(reward::reasoning_text(c.text, prompt_opens_think),
                                                           f.language, reward::LanguageUnit::words);
    if (s.total > 0 && s.share() < f.min_language_share) return DistillVerdict::kLanguage;
  }
  if (f.max_repetition < 1 && repeated_ngram_fraction(c.token_ids, f.repetition_ngram) > f.max_repetition)
    return DistillVerdict::kRepetition;
  return DistillVerdict::kAccepted;
}

DistillVerdict PromptFilter::next(const Completion& c) {
  ++samples_;
  DistillVerdict v = check_completion(c, *f_, opens_think_);
  if (v == DistillVerdict::kAccepted && f_->dedupe && !seen_.insert(dedupe_key(c.text)).second)
    v = DistillVerdict::kDuplicate;
  if (v == DistillVerdict::kAccepted && f_->per_prompt_cap > 0 && accepted_ >= f_->per_prompt_cap)
    v = DistillVerdict::kCap;
  accepted_ += v == DistillVerdict::kAccepted;
  return v;
}

std::vector<DistillVerdict> filter_completions(const std::vector<Completion>& completions, const DistillFilters& f,
                                               bool prompt_opens_think) {
  PromptFilter filter(f, prompt_opens_think);
  std::vector<DistillVerdict> out;
  out.reserve(completions.size());
  for (const Completion& c : completions) out.push_back(filter.next(c));
  return out;
}

}  // namespace grpo
