#include "store/experience_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "common/error.h"

namespace grpo {
namespace {

constexpr char kGroupPrefix = 'g';
constexpr size_t kGroupKeyBytes = 17;
const char* const kSchema = "grpo.experience.v1";
const std::string kMetaSchema = "mschema";
const std::string kMetaNextSeq = "mnext_seq";
const std::string kMetaCount = "mcount";
const std::string kMetaLastTrained = "mlast_trained_step";
const std::string kMetaRunEpoch = "mrun_epoch";
// Bounds of the group key range: every group key starts with 'g', and 'h' is the next prefix.
const std::string kGroupsBegin(1, kGroupPrefix);
const std::string kGroupsEnd(1, kGroupPrefix + 1);

void put_be64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}
std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    out.push_back("0123456789abcdef"[c >> 4]);
    out.push_back("0123456789abcdef"[c & 15]);
  }
  return out;
}

// Key range of steps [from, to] (inclusive): [group_key(from, 0), group_key(to + 1, 0)).
std::string step_lower_bound(int64_t from) { return GroupKey{std::max<int64_t>(from, 0), 0}.encode(); }
std::string step_upper_bound(int64_t to) {
  return to >= std::numeric_limits<int64_t>::max() ? kGroupsEnd : GroupKey{to + 1, 0}.encode();
}

}  // namespace

// ---- GroupKey -------------------------------------------------------------------------------

std::string GroupKey::encode() const {
  std::string k(1, kGroupPrefix);
  k.reserve(kGroupKeyBytes);
  put_be64(k, static_cast<uint64_t>(step));
  put_be64(k, seq);
  return k;
}

std::optional<GroupKey> GroupKey::decode(std::string_view key) {
  if (key.size() != kGroupKeyBytes || key[0] != kGroupPrefix) return std::nullopt;
  GroupKey k{static_cast<int64_t>(get_be64(key.data() + 1)), get_be64(key.data() + 9)};
  if (k.step < 0) return std::nullopt;
  return k;
}

std::string GroupKey::describe() const { return "step " + std::to_string(step) + " seq " + std::to_string(seq); }

// ---- Cursor ---------------------------------------------------------------------------------

struct ExperienceStore::Cursor::Impl {
  rocksdb::DB* db;
  const rocksdb::Snapshot* snapshot;
  std::string upper;
  rocksdb::Slice upper_slice;
  std::unique_ptr<rocksdb::Iterator> it;
  size_t max_kept;

  Impl(rocksdb::DB* d, const std::string& lower, std::string up, size_t kept)
      : db(d), snapshot(d->GetSnapshot()), upper(std::move(up)), upper_slice(upper), max_kept(kept) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.iterate_upper_bound = &upper_slice;
    it.reset(db->NewIterator(ro));
    it->Seek(lower);
  }
  ~Impl() {
    it.reset();  // before the snapshot it reads
    db->ReleaseSnapshot(snapshot);
  }
};

ExperienceStore::Cursor::Cursor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExperienceStore::Cursor::Cursor(Cursor&&) noexcept = default;
ExperienceStore::Cursor& ExperienceStore::Cursor::operator=(Cursor&&) noexcept = default;
ExperienceStore::Cursor::~Cursor() = default;

bool ExperienceStore::Cursor::next() {
  rocksdb::Iterator& it = *impl_->it;
  for (; it.Valid(); it.Next()) {
    const rocksdb::Slice k = it.key();
    std::optional<GroupKey> key = GroupKey::decode(std::string_view(k.data(), k.size()));
    std::string reason;
    std::optional<ScoredGroup> g;
    if (key)
      g = decode_scored_group(std::string_view(it.value().data(), it.value().size()), &reason);
    else
      reason = "malformed group key (expected 'g' + 16 bytes with a non-negative step)";
    if (g) {
      key_ = *key;
      group_ = std::move(*g);
      it.Next();
      return true;
    }
    ++skipped_;
    if (corruptions_.size() < impl_->max_kept)
      corruptions_.push_back({key ? key->describe() : "key 0x" + hex(std::string_view(k.data(), k.size())), reason});
  }
  if (!it.status().ok()) throw StoreError("experience store: reading failed: " + it.status().ToString());
  return false;
}

// ---- ExperienceStore ------------------------------------------------------------------------

ExperienceStore::ExperienceStore(std::string dir, const ExperienceStoreOptions& options,
                                 std::unique_ptr<rocksdb::DB> db)
    : dir_(std::move(dir)), options_(options), db_(std::move(db)) {}

ExperienceStore::~ExperienceStore() {
  if (db_) db_->Close();  // a failure here has nothing left to lose: every put was already synced
}

std::unique_ptr<ExperienceStore> ExperienceStore::open(const std::string& dir, const ExperienceStoreOptions& options) {
  rocksdb::Options o;
  o.create_if_missing = options.create_if_missing && !options.read_only;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = options.read_only ? rocksdb::DB::OpenForReadOnly(o, dir, &raw) : rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) throw InputError("cannot open experience store '" + dir + "': " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);

  auto meta = [&](const std::string& name, std::string* value) {
    rocksdb::Status st = db->Get(rocksdb::ReadOptions(), name, value);
    if (!st.ok() && !st.IsNotFound())
      throw StoreError("experience store '" + dir + "': reading " + name.substr(1) + ": " + st.ToString());
    return st.ok();
  };
  std::string schema;
  if (!meta(kMetaSchema, &schema)) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid() || options.read_only)
      throw InputError("'" + dir + "' is a RocksDB database but not an experience store (no schema key)");
    rocksdb::WriteOptions wo;
    wo.sync = options.sync;
    rocksdb::Status st = db->Put(wo, kMetaSchema, kSchema);
    if (!st.ok()) throw StoreError("experience store '" + dir + "': writing the schema: " + st.ToString());
    schema = kSchema;
  }
  if (schema != kSchema)
    throw InputError("experience store '" + dir + "' has schema '" + schema + "', this build reads '" + kSchema + "'");

  auto load_u64 = [&](const std::string& name, uint64_t fallback) {
    std::string v;
    if (!meta(name, &v)) return fallback;
    if (v.size() != 8)
      throw InputError("experience store '" + dir + "': metadata " + name.substr(1) + " has " +
                       std::to_string(v.size()) + " bytes, expected 8");
    uint64_t x = 0;
    for (int i = 0; i < 8; ++i) x |= uint64_t(static_cast<unsigned char>(v[i])) << (8 * i);
    return x;
  };
  const uint64_t next_seq = load_u64(kMetaNextSeq, 0);
  const uint64_t count = load_u64(kMetaCount, 0);
  const uint64_t last_trained = load_u64(kMetaLastTrained, static_cast<uint64_t>(int64_t{-1}));
  const uint64_t run_epoch = load_u64(kMetaRunEpoch, 0);
  std::unique_ptr<ExperienceStore> store(new ExperienceStore(dir, options, std::move(db)));
  store->next_seq_ = next_seq;
  store->count_ = static_cast<int64_t>(count);
  store->last_trained_ = static_cast<int64_t>(last_trained);
  store->run_epoch_ = static_cast<int64_t>(run_epoch);
  return store;
}

void ExperienceStore::require_writable(const char* what) const {
  if (options_.read_only) throw InputError("experience store '" + dir_ + "' is open read-only: cannot " + what);
}

std::vector<GroupKey> ExperienceStore::write_groups(const std::vector<const ScoredGroup*>& groups) {
  require_writable("put");
  // Encode (and validate) everything before taking the write lock; a bad group writes nothing.
  std::vector<std::string> records;
  records.reserve(groups.size());
  for (const ScoredGroup* g : groups) {
    records.push_back(encode_scored_group(*g));
    if (records.back().size() > options_.max_record_bytes)
      throw InputError("scored group (step " + std::to_string(g->step) + ", prompt '" + g->prompt_id +
                       "') encodes to " + std::to_string(records.back().size()) +
                       " bytes, over the store's max_record_bytes " + std::to_string(options_.max_record_bytes));
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<GroupKey> keys;
  keys.reserve(groups.size());
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < groups.size(); ++i) {
    keys.push_back({groups[i]->step, next_seq_ + i});
    batch.Put(keys.back().encode(), records[i]);
  }
  const int64_t new_count = count_ + static_cast<int64_t>(groups.size());
  batch.Put(kMetaNextSeq, le64(next_seq_ + groups.size()));
  batch.Put(kMetaCount, le64(static_cast<uint64_t>(new_count)));
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok())
    throw StoreError("experience store '" + dir_ + "': writing " + std::to_string(groups.size()) +
                     " group(s) failed: " + s.ToString());
  next_seq_ += groups.size();
  count_ = new_count;
  return keys;
}

GroupKey ExperienceStore::put(const ScoredGroup& group) { return write_groups({&group}).front(); }

std::vector<GroupKey> ExperienceStore::put_batch(const std::vector<ScoredGroup>& groups) {
  std::vector<const ScoredGroup*> ptrs;
  ptrs.reserve(groups.size());
  for (const ScoredGroup& g : groups) ptrs.push_back(&g);
  return write_groups(ptrs);
}

ReadStatus ExperienceStore::get(const GroupKey& key, ScoredGroup* out) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key.encode(), &value);
  if (s.IsNotFound()) return {ReadStatus::kNotFound, ""};
  if (!s.ok()) throw StoreError("experience store '" + dir_ + "': reading " + key.describe() + ": " + s.ToString());
  std::string reason;
  std::optional<ScoredGroup> g = decode_scored_group(value, &reason);
  if (!g) return {ReadStatus::kCorrupt, reason};
  *out = std::move(*g);
  return {ReadStatus::kOk, ""};
}

ExperienceStore::Cursor ExperienceStore::cursor(int64_t from_step, int64_t to_step) const {
  return Cursor(std::make_unique<Cursor::Impl>(db_.get(), step_lower_bound(from_step), step_upper_bound(to_step),
                                               options_.max_kept_corruptions));
}

ScanResult ExperienceStore::scan(int64_t from_step, int64_t to_step,
                                 const std::function<bool(const GroupKey&, const ScoredGroup&)>& fn) const {
  ScanResult result;
  if (to_step < from_step) return result;
  Cursor c = cursor(from_step, to_step);
  while (c.next()) {
    ++result.groups;
    if (!fn(c.key(), c.group())) break;
  }
  result.skipped = c.skipped();
  result.corruptions = c.corruptions();
  return result;
}

int64_t ExperienceStore::count() const { return count_; }

int64_t ExperienceStore::last_step() const {
  rocksdb::ReadOptions ro;
  const rocksdb::Slice lower(kGroupsBegin), upper(kGroupsEnd);
  ro.iterate_lower_bound = &lower;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->SeekToLast(); it->Valid(); it->Prev())
    if (auto k = GroupKey::decode(std::string_view(it->key().data(), it->key().size()))) return k->step;
  if (!it->status().ok())
    throw StoreError("experience store '" + dir_ + "': reading failed: " + it->status().ToString());
  return -1;
}

void ExperienceStore::mark_trained(int64_t step) {
  require_writable("mark_trained");
  std::lock_guard<std::mutex> lock(write_mu_);
  if (step < 0)
    throw InputError("experience store '" + dir_ + "': mark_trained(" + std::to_string(step) +
                     "): expected a step >= 0");
  if (step < last_trained_)
    throw InputError("experience store '" + dir_ + "': mark_trained(" + std::to_string(step) +
                     ") would go back from the last trained step " + std::to_string(last_trained_.load()));
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  rocksdb::Status s = db_->Put(wo, kMetaLastTrained, le64(static_cast<uint64_t>(step)));
  if (!s.ok()) throw StoreError("experience store '" + dir_ + "': mark_trained failed: " + s.ToString());
  last_trained_ = step;
}

int64_t ExperienceStore::last_trained_step() const { return last_trained_; }

int64_t ExperienceStore::begin_run() {
  require_writable("begin_run");
  std::lock_guard<std::mutex> lock(write_mu_);
  const int64_t epoch = run_epoch_ + 1;
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  rocksdb::Status s = db_->Put(wo, kMetaRunEpoch, le64(static_cast<uint64_t>(epoch)));
  if (!s.ok()) throw StoreError("experience store '" + dir_ + "': begin_run failed: " + s.ToString());
  run_epoch_ = epoch;
  return epoch;
}

int64_t ExperienceStore::run_epoch() const { return run_epoch_; }

}  // namespace grpo
