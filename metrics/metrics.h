// Run metrics: each logged step becomes one JSON line in RUN_DIR/metrics.jsonl and one TensorBoard
// event in RUN_DIR/tb/events.out.tfevents.*; both are written and handed to the OS before log()
// returns. RUN_DIR/report.html (metrics/report.h) is rendered from metrics.jsonl.
//
//   {"step": 12, "time": 1718000000.25, "reward/mean": 0.41, "time/generate": 3.2, ...}
//
// "step" (integer) and "time" (unix seconds) are reserved; every other member is a metric. A value
// that is not finite (NaN, ±inf) is written as null in JSON (and as is in TensorBoard).
//
// Key names: "<group>/<name>" or a bare "<group>"; the report draws one plot per group. The train
// loop logs (docs/architecture.md §4):
//   reward/mean, reward/std, reward/<component>/mean     accuracy
//   response_length/mean, response_length/max           response_clipped_fraction
//   kl                                                  entropy
//   clip/fraction, clip/dual_fraction                   mismatch/<name> (rollout vs trainer log-probs)
//   time/generate, time/score, time/train, time/sync    (seconds per step; plotted stacked)
//   grad_norm   lr   throughput/tokens_per_s
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics/tensorboard_events.h"

namespace grpo {

// Not thread-safe: one owner thread logs. Owns its metrics.jsonl descriptor and event file (closed when destroyed).
class MetricsWriter {
 public:
  // Creates RUN_DIR and RUN_DIR/tb as needed. metrics.jsonl is appended to (a resumed run continues
  // it); a torn last line left by a crash is closed with a newline first. Each writer starts a new
  // event file.
  explicit MetricsWriter(const std::string& run_dir);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // InputError for an empty or reserved key; I/O failures are InputErrors naming the file.
  void log(int64_t step, const std::map<std::string, double>& values);

  const std::string& jsonl_path() const { return jsonl_path_; }
  const std::string& event_path() const { return events_->path(); }

 private:
  std::string jsonl_path_;
  int jsonl_fd_ = -1;
  std::unique_ptr<EventFileWriter> events_;
};

// metrics.jsonl read back. The lines of one step (a training line, an evaluation line) are merged;
// where two lines of a step have the same key, the later line's value is kept.
struct MetricsHistory {
  std::vector<int64_t> steps;           // every logged step, increasing
  std::map<int64_t, double> wall_time;  // step -> "time"
  // key -> (step, value), steps increasing; NaN where the line had null (a non-finite value).
  std::map<std::string, std::vector<std::pair<int64_t, double>>> series;
  std::vector<std::string> bad_lines;  // "line 7: <why>" for lines that were skipped
};

// Reads a metrics.jsonl. Lines that are not a JSON object with an integer "step" are skipped and
// listed in bad_lines (a crash can leave a torn line); members that are not numbers or null are
// ignored. InputError when the file cannot be read, or when it has lines but none is valid.
MetricsHistory read_metrics(const std::string& jsonl_path);

// Rewrites a metrics.jsonl (atomically, common/fs.h) without its lines of steps after `step` and
// its malformed lines, and returns how many lines it dropped; a missing file is left missing (0).
// A resumed run calls it before it opens its MetricsWriter, so the steps it replays after its
// checkpoint are not logged twice.
int64_t drop_metrics_after(const std::string& jsonl_path, int64_t step);

}  // namespace grpo
