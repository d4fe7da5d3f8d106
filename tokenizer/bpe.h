// The BPE model of a byte-level tokenizer.json (`model`: type BPE, vocab, merges).
//
// A piece's bytes start as single-byte symbols of the byte-level alphabet; merges are applied
// lowest rank first, leftmost first among equal ranks, exactly as HF tokenizers' Word::merge_all
// does. With ignore_merges, a piece that is itself a vocabulary entry is emitted whole. Bytes with
// no vocabulary entry become unk_token when one is set and are dropped otherwise (as HF does).
//
// A bounded word cache (piece bytes -> ids; direct-mapped, sharded locks, thread-safe) skips the
// merge loop for repeated pieces of 5 to 64 bytes; capacity 0 turns it off.
#pragma once
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json.h"

namespace grpo {

// Thread-safety: const methods may be called concurrently (the cache locks itself). Owns its tables and cache.
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

  // Merge rank and result per (left id, right id): open addressing, linear probing, since this
  // lookup is the inner loop of encoding.
  class MergeTable {
   public:
    struct Slot {
      uint64_t key = kEmpty;
      int32_t rank = 0, id = 0;
    };
    void reserve(size_t n);
    void insert_or_assign(int32_t left, int32_t right, int32_t rank, int32_t id);  // a later merge wins, as in HF
    const Slot* find(int32_t left, int32_t right) const {
      const uint64_t key = pack(left, right);
      for (uint64_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
        const Slot& s = slots_[i];
        if (s.key == key) return &s;
        if (s.key == kEmpty) return nullptr;
      }
    }

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    static uint64_t pack(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
    static uint64_t mix(uint64_t k) {
      k *= 0x9E3779B97F4A7C15ull;
      return k ^ (k >> 29);
    }
    std::vector<Slot> slots_ = std::vector<Slot>(1);
    uint64_t mask_ = 0;
    size_t size_ = 0;
  };

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<std::string, int32_t> whole_pieces_;  // raw bytes -> id (ignore_merges only)
  MergeTable merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of each single-byte symbol, or -1
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  class WordCache;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace grpo
