// The pre-tokenizer of a byte-level BPE tokenizer.json: splits text into the pieces that BPE
// merges never cross. Supported (as HF tokenizers runs them):
//   Sequence{pretokenizers: [...]}
//   Split{pattern: {Regex|String}, behavior: Removed|Isolated|MergedWithPrevious|MergedWithNext|
//         Contiguous, invert}
//   Digits{individual_digits}
//   ByteLevel{add_prefix_space, use_regex (the GPT-2 pattern)} -- required, as the last step
// Pieces are raw bytes; the byte-level alphabet mapping happens in the BPE model.
#pragma once
#include <nlohmann/json.hpp>

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/json.h"
#include "tokenizer/regex.h"

namespace grpo {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// The pieces of one text; views point into the text or into `owned` (pieces that gained a prefix
// space).
// Not thread-safe: one owner. Owns `owned`; the text the other views point into must outlive it.
struct PreTokenized {
  std::vector<std::string_view> pieces;
  std::deque<std::string> owned;
  void clear() {
    pieces.clear();
    owned.clear();
  }
};

// Thread-safety: immutable once parsed; split() may be called concurrently. Owns its steps (regexes shared).
class PreTokenizer {
 public:
  // Parses the `pre_tokenizer` node at `where`; InputError naming the key for anything unsupported.
  static PreTokenizer from_json(const nlohmann::json& node, const JsonWhere& where);

  // Splits `text` (which must outlive `out`) into non-empty pieces, appended to out.pieces.
  void split(std::string_view text, PreTokenized& out) const;

 private:
  struct Step {
    enum Kind { kSplit, kByteLevel } kind = kSplit;
    std::optional<Regex> regex;  // absent for ByteLevel without use_regex
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;
  };
  static void parse(const nlohmann::json& node, const JsonWhere& where, std::vector<Step>& steps);
  std::vector<Step> steps_;
};

// Splits `text` by the matches of `regex` the way HF's NormalizedString::split does with the given
// behavior (invert: the non-matching stretches act as the delimiters). Non-empty pieces only.
void split_by_pattern(const Regex& regex, SplitBehavior behavior, bool invert, std::string_view text,
                      std::vector<std::string_view>& out);

}  // namespace grpo
