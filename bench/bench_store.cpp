// Experience store throughput: our put / put_batch / cursor beside plain RocksDB doing the same
// writes (the same encoded bytes under the same keys, same sync setting) and reads, so the table
// shows what the store adds on top of RocksDB + fsync. Group: G completions of T tokens.
// Prints a table and writes bench/results/store.json.
// Usage: bench_store [puts G T]   (defaults 200 8 512)
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "store/experience_store.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

grpo::ScoredGroup make_group(int64_t step, int index, int G, int T, std::mt19937& rng) {
  grpo::ScoredGroup g;
  g.run_id = "bench";
  g.step = step;
  g.prompt_id = "p" + std::to_string(index);
  g.prompt_text = std::string(400, 'q');
  g.prompt_token_ids.assign(120, 17);
  g.reference_answer = "42";
  for (int i = 0; i < G; ++i) {
    grpo::Completion c;
    c.text.resize(static_cast<size_t>(T) * 4);
    for (auto& ch : c.text) ch = static_cast<char>('a' + rng() % 26);
    for (int t = 0; t < T; ++t) {
      c.token_ids.push_back(static_cast<int32_t>(rng() % 100000));
      c.logprobs.push_back(-static_cast<float>(rng() % 1000) / 100.0f);
    }
    c.reward_components = {{"accuracy", 1}, {"format", 0.5}};
    c.reward = 1.5;
    g.completions.push_back(std::move(c));
  }
  return g;
}

std::unique_ptr<rocksdb::DB> open_raw(const std::string& dir) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

struct Timing {
  double seconds = 0;
  std::vector<double> latencies;  // per operation
  double p(double q) {
    if (latencies.empty()) return 0;
    std::sort(latencies.begin(), latencies.end());
    return latencies[static_cast<size_t>(q * (latencies.size() - 1))];
  }
};

template <typename F>
Timing timed_ops(int n, F op) {
  Timing t;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    const auto a = Clock::now();
    op(i);
    t.latencies.push_back(std::chrono::duration<double>(Clock::now() - a).count());
  }
  t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  const int G = argc > 2 ? std::atoi(argv[2]) : 8;
  const int T = argc > 3 ? std::atoi(argv[3]) : 512;
  const fs::path root = fs::temp_directory_path() / ("bench_store_" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::mt19937 rng(1);
  std::vector<grpo::ScoredGroup> groups;
  groups.reserve(n);
  for (int i = 0; i < n; ++i) groups.push_back(make_group(i / 8, i, G, T, rng));
  std::vector<std::string> records;
  records.reserve(groups.size());
  for (const auto& g : groups) records.push_back(grpo::encode_scored_group(g));
  const double mb = [&] {
    double b = 0;
    for (const auto& r : records) b += r.size();
    return b / 1e6;
  }();

  nlohmann::json out = {{"bench", "experience_store"},
                        {"groups", n},
                        {"group_size", G},
                        {"tokens", T},
                        {"record_bytes", static_cast<int64_t>(records[0].size())}};
  std::printf("experience store: %d groups of %d x %d tokens, %.1f KB per record, temp dir %s\n", n, G, T,
              records[0].size() / 1e3, root.c_str());
  std::printf("%-26s %12s %12s %10s %10s\n", "operation", "groups/s", "MB/s", "p50 ms", "p99 ms");
  auto row = [&](const std::string& name, Timing t, int ops_groups) {
    const double gps = ops_groups / t.seconds;
    const double p50 = t.p(0.5) * 1e3, p99 = t.p(0.99) * 1e3;
    std::printf("%-26s %12.1f %12.1f %10.3f %10.3f\n", name.c_str(), gps, gps * mb / n, p50, p99);
    out[name] = {{"groups_per_s", gps}, {"mb_per_s", gps * mb / n}, {"p50_ms", p50}, {"p99_ms", p99}};
  };

  for (bool sync : {true, false}) {
    const std::string tag = sync ? " sync" : " nosync";
    {
      auto db = open_raw((root / ("raw" + tag)).string());
      rocksdb::WriteOptions wo;
      wo.sync = sync;
      row("rocksdb Put" + tag,
          timed_ops(n,
                    [&](int i) {
                      db->Put(wo, grpo::GroupKey{groups[i].step, static_cast<uint64_t>(i)}.encode(), records[i]);
                    }),
          n);
    }
    grpo::ExperienceStoreOptions o;
    o.sync = sync;
    auto store = grpo::ExperienceStore::open((root / ("ours" + tag)).string(), o);
    row("store put" + tag, timed_ops(n, [&](int i) { store->put(groups[i]); }), n);
  }
  {
    const int batch = 16;
    auto store = grpo::ExperienceStore::open((root / "batch").string());
    std::vector<std::vector<grpo::ScoredGroup>> batches;
    for (int i = 0; i + batch <= n; i += batch) batches.emplace_back(groups.begin() + i, groups.begin() + i + batch);
    row("store put_batch(16) sync",
        timed_ops(static_cast<int>(batches.size()), [&](int i) { store->put_batch(batches[i]); }),
        static_cast<int>(batches.size()) * batch);
  }
  {
    auto store = grpo::ExperienceStore::open((root / "ours sync").string());
    int64_t seen = 0;
    Timing t = timed_ops(1, [&](int) {
      auto c = store->cursor();
      while (c.next()) ++seen;
    });
    row("store cursor (decode)", t, static_cast<int>(seen));
  }
  {
    auto db = open_raw((root / "raw sync").string());
    int64_t seen = 0;
    Timing t = timed_ops(1, [&](int) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
      for (it->SeekToFirst(); it->Valid(); it->Next()) seen += !it->value().empty();
    });
    row("rocksdb iterator (bytes)", t, static_cast<int>(seen));
  }
  {
    Timing enc = timed_ops(n, [&](int i) { records[i] = grpo::encode_scored_group(groups[i]); });
    row("encode only", enc, n);
    Timing dec = timed_ops(n, [&](int i) { grpo::decode_scored_group(records[i]); });
    row("decode only (CRC + parse)", dec, n);
  }
  fs::remove_all(root);
  const fs::path dir = fs::path(GRPO_SOURCE_DIR) / "bench" / "results";
  fs::create_directories(dir);
  std::ofstream(dir / "store.json") << out.dump(2) << "\n";
  return 0;
}
