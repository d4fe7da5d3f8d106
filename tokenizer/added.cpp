#include "tokenizer/added.h"

#include "common/utf8.h"
#include "tokenizer/unicode.h"

namespace grpo {
namespace {

// Start of the character that ends right before `pos` (pos > 0) and its code point; a byte that
// does not end a valid character counts as one invalid character.
size_t prev_char(std::string_view text, size_t pos, char32_t* cp) {
  size_t start = pos - 1;
  while (start > 0 && pos - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  if (start + utf8::decode(text, start, cp) == pos) return start;
  *cp = utf8::kInvalid;
  return pos - 1;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns)
    : tokens_(std::move(tokens)) {
  nodes_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    int32_t node = 0;
    for (unsigned char b : p) {
      int32_t child = -1;
      for (const auto& [byte, idx] : nodes_[node].next)
        if (byte == b) child = idx;
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].next.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);  // first token wins a tie
    starts_[static_cast<unsigned char>(p[0])] = true;
  }
}

bool AddedTokenMatcher::find(std::string_view text, size_t from, size_t* begin, size_t* end, int32_t* token) const {
  for (size_t s = from; s < text.size(); ++s) {
    if (!starts_[static_cast<unsigned char>(text[s])]) continue;
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t i = s; i < text.size(); ++i) {
      int32_t child = -1;
      for (const auto& [byte, idx] : nodes_[node].next)
        if (byte == static_cast<unsigned char>(text[i])) child = idx;
      if (child < 0) break;
      node = child;
      if (nodes_[node].token >= 0) best = nodes_[node].token, best_end = i + 1;
    }
    if (best >= 0) {
      *begin = s, *end = best_end, *token = best;
      return true;
    }
  }
  return false;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t done = 0;  // end of the last emitted segment
  size_t search = 0;
  size_t begin, end;
  int32_t t;
  while (search < text.size() && find(text, search, &begin, &end, &t)) {
    search = end;  // matches never overlap, whatever the flags below decide
    const AddedToken& tok = tokens_[t];
    if (tok.single_word) {
      char32_t before = utf8::kInvalid, after = utf8::kInvalid;
      if (begin > 0) prev_char(text, begin, &before);
      if (end < text.size()) utf8::decode(text, end, &after);
      bool left_ok = begin == 0 || !unicode::is_word(before);
      bool right_ok = end == text.size() || !unicode::is_word(after);
      if (!left_ok || !right_ok) continue;
    }
    if (tok.lstrip) {
      while (begin > done) {
        char32_t cp;
        size_t start = prev_char(text, begin, &cp);
        if (!unicode::is_white_space(cp)) break;
        begin = start;
      }
    }
    if (tok.rstrip) {
      while (end < text.size()) {
        char32_t cp;
        size_t n = utf8::decode(text, end, &cp);
        if (!unicode::is_white_space(cp)) break;
        end += n;
      }
    }
    if (begin < done) begin = done;  // a previous rstrip already took these bytes
    if (done < begin) out.push_back({done, begin, -1});
    out.push_back({begin, end, tok.id});
    done = end;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace grpo
