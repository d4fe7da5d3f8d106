// The learner's experience store: every scored group, on RocksDB, written before it is used, so a
// crash loses no generated data and a resumed run knows which groups were already trained on.
//
// Keys (one RocksDB column family):
//   'g' | step (8 bytes big-endian) | seq (8 bytes big-endian)  -> a scored group record
//        (learner/scored_group.h: version byte, CRC-32C, body); iteration by step is a range scan,
//        and within a step groups come in the order they were put.
//   'm' | name                                                 -> store metadata: schema,
//        next_seq, count, last_trained_step, run_epoch (u64/i64 little-endian)
// A put writes the record and the updated next_seq/count in one atomic, fsynced WriteBatch (when
// options.sync), so after put() returns the group survives kill -9 and power loss, and a record is
// never half there.
//
// Corrupt records (bad checksum, truncated, unknown version, malformed key) are never fatal: scans
// and cursors skip them, count them and keep the reasons; get() reports them as kCorrupt.
//
// Thread safety: all methods may be called from many threads at once; puts are serialised (one
// writer at a time), reads run beside them. A Cursor is used by one thread and must not outlive its
// store. One process at a time may open a store for writing (RocksDB's LOCK file).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "learner/scored_group.h"

namespace rocksdb {
class DB;
}

namespace grpo {

// A RocksDB failure while reading or writing (I/O error, disk full). Opening a missing or foreign
// directory is an InputError instead.
// Thread-safety: immutable once thrown; owns its message.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GroupKey {
  int64_t step = 0;  // >= 0
  uint64_t seq = 0;  // store-wide insertion number: unique, increasing across reopens

  std::string encode() const;  // the 17-byte RocksDB key
  // nullopt unless `key` is a well-formed group key (prefix, length, step >= 0).
  static std::optional<GroupKey> decode(std::string_view key);
  std::string describe() const;  // "step 3 seq 17"
};
inline bool operator==(const GroupKey& a, const GroupKey& b) { return a.step == b.step && a.seq == b.seq; }
inline bool operator<(const GroupKey& a, const GroupKey& b) {
  return a.step != b.step ? a.step < b.step : a.seq < b.seq;
}

struct ExperienceStoreOptions {
  bool create_if_missing = true;
  bool read_only = false;                // open without the write lock (e.g. an exporter); puts throw
  bool sync = true;                      // fsync the write-ahead log in every put / mark_trained
  size_t max_record_bytes = 256u << 20;  // a larger encoded group is refused (InputError)
  size_t max_kept_corruptions = 100;     // reasons kept per scan/cursor; all are counted
};

// A record that could not be decoded.
struct Corruption {
  std::string key;     // "step 3 seq 17", or the raw key in hex when the key itself is malformed
  std::string reason;  // "checksum mismatch: ...", "truncated: ...", "unknown format version 9 ..."
};

struct ScanResult {
  int64_t groups = 0;                   // delivered to the callback
  int64_t skipped = 0;                  // corrupt records passed over
  std::vector<Corruption> corruptions;  // the first max_kept_corruptions of them
};

struct ReadStatus {
  enum Code { kOk, kNotFound, kCorrupt } code = kOk;
  std::string reason;  // for kCorrupt
  bool ok() const { return code == kOk; }
};

// Thread-safety: see "Thread safety" above. Owns its RocksDB handle (closed when destroyed); a Cursor, its snapshot.
class ExperienceStore {
 public:
  // Iterates the groups of a step range in key order over a consistent snapshot (groups put after
  // the cursor was made are not seen), skipping corrupt records.
  class Cursor {
   public:
    Cursor(Cursor&&) noexcept;
    Cursor& operator=(Cursor&&) noexcept;
    ~Cursor();
    bool next();  // moves to the next intact group; false at the end
    const GroupKey& key() const { return key_; }
    const ScoredGroup& group() const { return group_; }
    int64_t skipped() const { return skipped_; }
    const std::vector<Corruption>& corruptions() const { return corruptions_; }

   private:
    friend class ExperienceStore;
    struct Impl;
    explicit Cursor(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
    GroupKey key_;
    ScoredGroup group_;
    int64_t skipped_ = 0;
    std::vector<Corruption> corruptions_;
  };

  // Opens (or creates) the store in directory `dir`. Throws InputError naming `dir` when it is
  // missing (and !create_if_missing), locked by another process, not an experience store, or of
  // another schema version.
  static std::unique_ptr<ExperienceStore> open(const std::string& dir, const ExperienceStoreOptions& options = {});
  ~ExperienceStore();
  ExperienceStore(const ExperienceStore&) = delete;
  ExperienceStore& operator=(const ExperienceStore&) = delete;

  // Stores one group; durable when it returns (options.sync). InputError for a group that cannot be
  // encoded (see encode_scored_group) or is over max_record_bytes; StoreError if RocksDB fails.
  GroupKey put(const ScoredGroup& group);
  // Stores all groups atomically (all or none) with one sync; keys in input order.
  std::vector<GroupKey> put_batch(const std::vector<ScoredGroup>& groups);

  ReadStatus get(const GroupKey& key, ScoredGroup* out) const;

  // Calls fn for each intact group with from_step <= step <= to_step in key order; fn returns false
  // to stop early.
  ScanResult scan(int64_t from_step, int64_t to_step,
                  const std::function<bool(const GroupKey&, const ScoredGroup&)>& fn) const;
  Cursor cursor(int64_t from_step = 0, int64_t to_step = std::numeric_limits<int64_t>::max()) const;

  int64_t count() const;      // group records put into this store (corrupt ones included)
  int64_t last_step() const;  // highest step with a record, -1 when empty

  // Records that every group with step <= `step` was used in an update that a checkpoint holds
  // (durable like put); the train loop marks a step once the checkpoint after it is written, so a
  // run resumed from that checkpoint never goes back behind the mark. InputError if `step` is
  // lower than the last marked step.
  void mark_trained(int64_t step);
  int64_t last_trained_step() const;  // -1 when nothing was marked

  // Counts one more start of the run that owns this store and returns the count (1 for the first
  // start), durable like put: weight versions carry it (train/weight_version.h), so a restarted
  // learner's versions are above those of every earlier start.
  int64_t begin_run();
  int64_t run_epoch() const;  // the last begin_run()'s value; 0 before the first

  const std::string& dir() const { return dir_; }

 private:
  ExperienceStore(std::string dir, const ExperienceStoreOptions& options, std::unique_ptr<rocksdb::DB> db);
  std::vector<GroupKey> write_groups(const std::vector<const ScoredGroup*>& groups);
  void require_writable(const char* what) const;

  std::string dir_;
  ExperienceStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::mutex write_mu_;  // one writer at a time: guards next_seq_ and the writes that move the counters
  uint64_t next_seq_ = 0;
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> last_trained_{-1};
  std::atomic<int64_t> run_epoch_{0};
};

}  // namespace grpo
