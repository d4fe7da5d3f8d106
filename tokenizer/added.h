// Added tokens (tokenizer.json `added_tokens`): strings matched in the text before any
// pre-tokenization, as HF's AddedVocabulary does. Matching is leftmost-longest over all tokens;
// each match then honours its token's flags:
//   single_word: dropped unless bounded by non-word characters (or the text ends) on both sides
//   lstrip / rstrip: swallows the whitespace run on its left / right
// Tokens with normalized=false match the raw text; normalized=true ones match the normalized
// text (their content normalized the same way).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grpo {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// Thread-safety: immutable once built; const methods may be called concurrently. Owns its tokens and trie.
class AddedTokenMatcher {
 public:
  // `patterns[i]` is the string searched for tokens[i] (its content, normalized when needed).
  AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns);
  AddedTokenMatcher() = default;

  // A stretch of the text: an added token (id >= 0) or plain text (id == -1).
  struct Segment {
    size_t begin, end;
    int32_t id;
  };
  // Covers `text` with segments, in order. Empty text gives no segments.
  void split(std::string_view text, std::vector<Segment>& out) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // byte -> node
    int32_t token = -1;                                   // index into tokens_ when a pattern ends here
  };
  // Leftmost-longest match at or after `from`: sets [begin, end) and the token index.
  bool find(std::string_view text, size_t from, size_t* begin, size_t* end, int32_t* token) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;  // trie; nodes_[0] is the root
  bool starts_[256] = {};    // bytes that begin some pattern
};

}  // namespace grpo
