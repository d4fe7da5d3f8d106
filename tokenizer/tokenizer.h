// Byte-level BPE tokenizer read from a HuggingFace tokenizer.json (DeepSeek-V3, Qwen2, Llama-3,
// GPT-2 style), giving the same ids as HF tokenizers' encode(text, add_special_tokens=False).
//
//   auto tok = grpo::Tokenizer::load("/models/DeepSeek-V3");   // dir or tokenizer.json
//   std::vector<int32_t> ids = tok.encode("<think>2+2</think>");
//   std::string text = tok.decode(ids);                          // == the input
//
// Pipeline: added tokens found in the text (leftmost-longest, honouring lstrip/rstrip/single_word/
// normalized) -> normalizer (NFC/NFD/NFKC/NFKD or none) -> pre-tokenizer (Split/Digits/ByteLevel)
// -> BPE merges. encode never adds BOS/EOS (callers prepend bos_id() when the model wants it).
//
// Text is bytes: invalid UTF-8 is accepted and every byte is kept, so decode(encode(s)) == s for
// any s when the tokenizer has no normalizer or prefix space. decode returns raw bytes (HF would
// replace a partial UTF-8 sequence with U+FFFD; concatenating our pieces gives the exact bytes).
//
// tokenizer_config.json beside tokenizer.json, when present, supplies bos_token / eos_token.
// All methods are const and thread-safe; copies share the loaded tables.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace grpo {

struct TokenizerOptions {
  // Words (pre-tokenized pieces) remembered with their ids; 0 disables the cache.
  size_t cache_capacity = 1 << 16;
};

class Tokenizer {
 public:
  // `path`: a tokenizer.json, or a directory holding one. Throws InputError naming the file and
  // the JSON key for malformed or unsupported content.
  static Tokenizer load(const std::string& path, const TokenizerOptions& options = {});
  // The file `load(path)` reads: path itself, or path/tokenizer.json for a directory.
  static std::string json_path(const std::string& path);

  std::vector<int32_t> encode(std::string_view text) const;
  // Throws InputError for an id with no token (negative, >= vocab_size(), or a gap).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t token_to_id(std::string_view token) const;  // -1 if absent (added tokens first)
  std::string id_to_token(int32_t id) const;          // the token string; throws InputError if absent
  int32_t vocab_size() const;                         // 1 + the largest id (model vocab and added tokens)
  int32_t bos_id() const;                             // -1 when unknown
  int32_t eos_id() const;                             // -1 when unknown
  bool is_special(int32_t id) const;                  // an added token marked special
  const std::string& path() const;                    // the tokenizer.json read

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace grpo
