#include "tokenizer/pretokenizer.h"

#include <algorithm>

#include "tokenizer/scratch.h"

namespace grpo {
namespace {

// GPT-2's split pattern, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const Regex& gpt2_regex() {
  static const Regex re = Regex::onig(kGpt2Pattern, "ByteLevel pre-tokenizer (GPT-2 pattern)");
  return re;
}

SplitBehavior parse_behavior(const nlohmann::json& v, const JsonWhere& where) {
  static const std::pair<const char*, SplitBehavior> names[] = {
      {"Removed", SplitBehavior::kRemoved},
      {"Isolated", SplitBehavior::kIsolated},
      {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
      {"MergedWithNext", SplitBehavior::kMergedWithNext},
      {"Contiguous", SplitBehavior::kContiguous}};
  if (v.is_string())
    for (const auto& [name, b] : names)
      if (v.get<std::string>() == name) return b;
  where.fail("expected one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous; got " +
             (v.is_string() ? "\"" + v.get<std::string>() + "\"" : json_kind(v)));
}

struct Segment {
  size_t begin, end;
  bool delimiter;
};

}  // namespace

void split_by_pattern(const Regex& regex, SplitBehavior behavior, bool invert, std::string_view text,
                      std::vector<std::string_view>& out) {
  if (text.empty()) return;
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  thread_local std::vector<Segment> segs, merged;
  matches.clear();
  segs.clear();
  merged.clear();
  regex.find_all(text, matches);
  // Cover the whole text with alternating stretches: matches and the gaps between them.
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) segs.push_back({prev, s, invert});
    segs.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != text.size()) segs.push_back({prev, text.size(), invert});

  switch (behavior) {
    case SplitBehavior::kIsolated: merged = segs; break;
    case SplitBehavior::kRemoved:
      for (const auto& s : segs)
        if (!s.delimiter) merged.push_back(s);
      break;
    case SplitBehavior::kContiguous: {
      bool previous = false;
      for (const auto& s : segs) {
        if (s.delimiter == previous && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous = s.delimiter;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous = false;
      for (const auto& s : segs) {
        if (s.delimiter && !previous && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous = s.delimiter;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->delimiter && !previous && !merged.empty()) {
          merged.back().begin = it->begin;
        } else {
          merged.push_back(*it);
        }
        previous = it->delimiter;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
  }
  for (const auto& s : merged)
    if (s.end > s.begin) out.push_back(text.substr(s.begin, s.end - s.begin));
  trim_scratch(matches);
  trim_scratch(segs);
  trim_scratch(merged);
}

void PreTokenizer::parse(const nlohmann::json& node, const JsonWhere& where, std::vector<Step>& steps) {
  where.expect_object(node);
  const std::string type = where.get_string(node, "type", "");
  if (type == "Sequence") {
    const auto& list = where.require(node, "pretokenizers");
    if (!list.is_array()) where.at("pretokenizers").fail("expected an array, got " + json_kind(list));
    for (size_t i = 0; i < list.size(); ++i) parse(list[i], where.at("pretokenizers").at(i), steps);
  } else if (type == "Split") {
    const JsonWhere pw = where.at("pattern");
    const auto& pattern = where.require(node, "pattern");
    pw.expect_object(pattern);
    Step step;
    if (pattern.size() == 1 && pattern.contains("Regex") && pattern["Regex"].is_string()) {
      step.regex.emplace(Regex::onig(pattern["Regex"].get<std::string>(), pw.at("Regex").describe()));
    } else if (pattern.size() == 1 && pattern.contains("String") && pattern["String"].is_string()) {
      step.regex.emplace(Regex::literal(pattern["String"].get<std::string>(), pw.at("String").describe()));
    } else {
      pw.fail("expected {\"Regex\": pattern} or {\"String\": text}");
    }
    step.behavior = parse_behavior(where.require(node, "behavior"), where.at("behavior"));
    step.invert = where.get_bool(node, "invert", false);
    steps.push_back(std::move(step));
  } else if (type == "Digits") {
    Step step;
    step.regex.emplace(Regex::onig("\\p{N}", where.describe()));
    step.behavior =
        where.get_bool(node, "individual_digits", false) ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
    steps.push_back(std::move(step));
  } else if (type == "ByteLevel") {
    Step step;
    step.kind = Step::kByteLevel;
    step.add_prefix_space = where.get_bool(node, "add_prefix_space", true);
    if (where.get_bool(node, "use_regex", true)) step.regex.emplace(gpt2_regex());
    steps.push_back(std::move(step));
  } else {
    where.at("type").fail("unsupported pre-tokenizer type \"" + type +
                          "\" (supported: Sequence, Split, Digits, ByteLevel)");
  }
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& node, const JsonWhere& where) {
  if (node.is_null())
    where.fail("a ByteLevel pre-tokenizer is required (only byte-level BPE tokenizers are supported)");
  PreTokenizer p;
  parse(node, where, p.steps_);
  for (size_t i = 0; i < p.steps_.size(); ++i) {
    if (p.steps_[i].kind == Step::kByteLevel && i + 1 != p.steps_.size())
      where.fail("ByteLevel must be the last pre-tokenizer step (found at step " + std::to_string(i + 1) + " of " +
                 std::to_string(p.steps_.size()) + ")");
  }
  if (p.steps_.empty() || p.steps_.back().kind != Step::kByteLevel)
    where.fail("a ByteLevel pre-tokenizer is required (only byte-level BPE tokenizers are supported)");
  return p;
}

void PreTokenizer::split(std::string_view text, PreTokenized& out) const {
  if (text.empty()) return;
  thread_local std::vector<std::string_view> cur, next;
  cur.assign(1, text);
  for (const Step& step : steps_) {
    next.clear();
    for (std::string_view piece : cur) {
      if (step.kind == Step::kByteLevel && step.add_prefix_space && piece.front() != ' ') {
        out.owned.push_back(" " + std::string(piece));
        piece = out.owned.back();
      }
      if (!step.regex) {
        next.push_back(piece);
      } else {
        split_by_pattern(*step.regex, step.behavior, step.invert, piece, next);
      }
    }
    cur.swap(next);
  }
  out.pieces.insert(out.pieces.end(), cur.begin(), cur.end());
  trim_scratch(cur);
  trim_scratch(next);
}

}  // namespace grpo
