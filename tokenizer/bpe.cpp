#include "tokenizer/bpe.h"

#include <algorithm>
#include <limits>
#include <mutex>

#include "common/utf8.h"
#include "tokenizer/bytes.h"
#include "tokenizer/scratch.h"

namespace grpo {

// Piece bytes -> ids, direct-mapped: each piece has one slot (by hash), and a new piece takes it
// over, so memory is bounded and a hit costs one lock, one compare and one copy. Slots are spread
// over shards, each with its own mutex, so threads rarely wait on each other.
class BpeModel::WordCache {
 public:
  // Pieces of a few bytes merge faster than a lookup; long ones rarely repeat. Only the rest is cached.
  static constexpr size_t kMinKey = 5, kMaxKey = 64;

  explicit WordCache(size_t capacity) {
    size_t per_shard = 1;
    while (per_shard * kShards < capacity) per_shard *= 2;
    for (Shard& s : shards_) s.slots.resize(per_shard);
  }

  bool get(std::string_view key, size_t hash, std::vector<int32_t>& out) {
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mutex);
    const Slot& slot = s.slots[(hash / kShards) & (s.slots.size() - 1)];
    if (slot.hash != hash || slot.key != key) return false;
    out.insert(out.end(), slot.ids.begin(), slot.ids.end());
    return true;
  }

  void put(std::string_view key, size_t hash, const int32_t* ids, size_t n) {
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mutex);
    Slot& slot = s.slots[(hash / kShards) & (s.slots.size() - 1)];
    slot.hash = hash;
    slot.key.assign(key.data(), key.size());
    slot.ids.assign(ids, ids + n);
  }

 private:
  static constexpr size_t kShards = 16;
  struct Slot {
    size_t hash = 0;
    std::string key;  // empty: unused (empty pieces are never looked up)
    std::vector<int32_t> ids;
  };
  struct Shard {
    std::mutex mutex;
    std::vector<Slot> slots;
  };
  Shard shards_[kShards];
};

void BpeModel::MergeTable::reserve(size_t n) {
  size_t capacity = 2;
  while (capacity < 2 * n) capacity *= 2;  // load factor <= 0.5
  slots_.assign(capacity, Slot());
  mask_ = capacity - 1;
  size_ = 0;
}

void BpeModel::MergeTable::insert_or_assign(int32_t left, int32_t right, int32_t rank, int32_t id) {
  if (2 * (size_ + 1) > slots_.size()) {  // grow (reserve() normally makes this unnecessary)
    std::vector<Slot> old;
    old.swap(slots_);
    reserve(old.size());
    for (const Slot& s : old)
      if (s.key != kEmpty)
        insert_or_assign(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key), s.rank, s.id);
  }
  const uint64_t key = pack(left, right);
  for (uint64_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == kEmpty) ++size_;
    if (s.key == kEmpty || s.key == key) {
      s = {key, rank, id};
      return;
    }
  }
}

BpeModel::BpeModel() { byte_ids_.fill(-1); }
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

BpeModel BpeModel::from_json(const nlohmann::json& model, const JsonWhere& where, size_t cache_capacity) {
  where.expect_object(model);
  const std::string type = where.get_string(model, "type", "BPE");
  if (type != "BPE") where.at("type").fail("unsupported model type \"" + type + "\" (only BPE is supported)");
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null())
    where.at("dropout").fail("BPE dropout is not supported (expected null)");
  if (where.get_bool(model, "byte_fallback", false))
    where.at("byte_fallback").fail("byte_fallback BPE is not supported (only byte-level BPE is)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!where.get_string(model, key, "").empty())
      where.at(key).fail("subword prefixes/suffixes are not supported (expected null or \"\")");

  BpeModel m;
  const JsonWhere vw = where.at("vocab");
  const auto& vocab = where.require(model, "vocab");
  vw.expect_object(vocab);
  std::unordered_map<int32_t, const std::string*> seen;
  m.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto& v = it.value();
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max())
      vw.at(it.key()).fail("expected a non-negative 32-bit integer id, got " + json_kind(v));
    auto [pos, fresh] = m.vocab_.emplace(it.key(), static_cast<int32_t>(v.get<int64_t>()));
    auto [other, unique_id] = seen.emplace(pos->second, &pos->first);
    if (!unique_id)
      vw.at(it.key()).fail("id " + std::to_string(pos->second) + " is also used by \"" + *other->second + "\"");
  }
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    utf8::append(sym, bytelevel::symbol_of(static_cast<unsigned char>(b)));
    if (auto it = m.vocab_.find(sym); it != m.vocab_.end()) m.byte_ids_[b] = it->second;
  }

  const std::string unk = where.get_string(model, "unk_token", "");
  if (!unk.empty()) {
    auto it = m.vocab_.find(unk);
    if (it == m.vocab_.end()) where.at("unk_token").fail("\"" + unk + "\" is not in model.vocab");
    m.unk_id_ = it->second;
  }
  m.fuse_unk_ = where.get_bool(model, "fuse_unk", false);
  m.ignore_merges_ = where.get_bool(model, "ignore_merges", false);
  if (m.ignore_merges_) {
    for (const auto& [token, id] : m.vocab_)
      if (auto bytes = bytelevel::to_bytes(token)) m.whole_pieces_.emplace(std::move(*bytes), id);
  }

  const JsonWhere mw = where.at("merges");
  auto mit = model.find("merges");
  if (mit != model.end() && !mit->is_null()) {
    if (!mit->is_array()) mw.fail("expected an array, got " + json_kind(*mit));
    m.merges_.reserve(mit->size());
    auto lookup = [&](const std::string& token, const JsonWhere& w) {
      auto it = m.vocab_.find(token);
      if (it == m.vocab_.end()) w.fail("merge names \"" + token + "\", which is not in model.vocab");
      return it->second;
    };
    for (size_t i = 0; i < mit->size(); ++i) {
      const auto& e = (*mit)[i];
      const JsonWhere ew = mw.at(i);
      std::string a, b;
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          ew.fail("expected \"left right\" (two tokens separated by one space), got \"" + s + "\"");
        a = s.substr(0, sp), b = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>(), b = e[1].get<std::string>();
      } else {
        ew.fail("expected \"left right\" or [left, right], got " + json_kind(e));
      }
      const int32_t ia = lookup(a, ew), ib = lookup(b, ew);
      const int32_t target = lookup(a + b, ew);
      m.merges_.insert_or_assign(ia, ib, static_cast<int32_t>(i), target);
    }
  }
  if (cache_capacity > 0) m.cache_ = std::make_unique<WordCache>(cache_capacity);
  return m;
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1 && byte_ids_[static_cast<unsigned char>(bytes[0])] >= 0) {
    out.push_back(byte_ids_[static_cast<unsigned char>(bytes[0])]);  // nothing to merge
    return;
  }
  if (ignore_merges_) {
    auto it = whole_pieces_.find(std::string(bytes));
    if (it != whole_pieces_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (!cache_ || bytes.size() < WordCache::kMinKey || bytes.size() > WordCache::kMaxKey) return merge(bytes, out);
  const size_t hash = std::hash<std::string_view>()(bytes);
  if (cache_->get(bytes, hash, out)) return;
  const size_t before = out.size();
  merge(bytes, out);
  cache_->put(bytes, hash, out.data() + before, out.size() - before);
}

void BpeModel::merge(std::string_view bytes, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  thread_local std::vector<Symbol> sym;
  sym.clear();
  bool last_unk = false;
  for (unsigned char b : bytes) {
    const int32_t id = byte_ids_[b];
    if (id >= 0) {
      sym.push_back({id, 0, 0, true});
      last_unk = false;
    } else if (unk_id_ >= 0) {
      if (!(fuse_unk_ && last_unk)) sym.push_back({unk_id_, 0, 0, true});
      last_unk = true;
    }
  }
  const int32_t n = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i < n; ++i) sym[i].prev = i - 1, sym[i].next = i + 1 < n ? i + 1 : -1;

  struct Candidate {
    int32_t rank, pos, id;
    bool operator<(const Candidate& o) const {  // the heap top is the lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  auto find_merge = [&](int32_t left, int32_t right) { return merges_.find(left, right); };
  thread_local std::vector<Candidate> heap;  // a max-heap under Candidate::operator<
  heap.clear();
  auto push = [&](Candidate c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 0; i + 1 < n; ++i)
    if (const MergeTable::Slot* t = find_merge(sym[i].id, sym[i + 1].id)) heap.push_back({t->rank, i, t->id});
  std::make_heap(heap.begin(), heap.end());

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    const MergeTable::Slot* t = find_merge(left.id, right.id);
    if (!t || t->id != top.id) continue;  // stale: one side changed since it was queued
    left.id = top.id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0)
      if (const MergeTable::Slot* p = find_merge(sym[left.prev].id, left.id)) push({p->rank, left.prev, p->id});
    if (left.next >= 0)
      if (const MergeTable::Slot* q = find_merge(left.id, sym[left.next].id)) push({q->rank, top.pos, q->id});
  }
  for (const Symbol& s : sym)
    if (s.alive) out.push_back(s.id);
  trim_scratch(sym);
  trim_scratch(heap);
}

}  // namespace grpo
