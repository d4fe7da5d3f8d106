// The BPE model of a byte-level tokenizer.json (`model`: type BPE, vocab, merges).
//
// A piece's bytes start as single-byte symbols of the byte-level alphabet; merges are applied
// lowest rank first, leftmost first among equal ranks, exactly as HF tokenizers' Word::merge_all
// does. With ignore_merges, a piece that is itself a vocabulary entry is emitted whole. Bytes with
// no vocabulary entry become unk_token when one is set and are dropped otherwise (as HF does).
//
// A bounded word cache (piece bytes -> ids, thread-safe, sharded) skips the merge loop for
// repeated pieces; capacity 0 turns it off.
#pragma once
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer_json.h"

namespace grpo {

class BpeModel {
 public:
  // Parses `model` at `where`; InputError naming the key for a missing vocab, a merge naming an
  // unknown token, unsupported options (dropout, byte_fallback, subword prefixes), ...
  static BpeModel from_json(const nlohmann::json& model, const JsonWhere& where, size_t cache_capacity);

  // Appends the ids of one pre-tokenized piece (raw bytes).
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;

  // token string (byte-level alphabet) -> id
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

 private:
  BpeModel();
  void merge(std::string_view bytes, std::vector<int32_t>& out) const;

  struct MergeTarget {
    int32_t rank, id;
  };
  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<std::string, int32_t> whole_pieces_;  // raw bytes -> id (ignore_merges only)
  std::unordered_map<uint64_t, MergeTarget> merges_;        // (left id << 32 | right id) -> target
  std::array<int32_t, 256> byte_ids_{};                     // id of each single-byte symbol, or -1
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  class WordCache;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace grpo
