// A progress line with rate and ETA on stderr, redrawn at most every 0.5 s:
//   train  12/100 [ 12%]  3.20 it/s  elapsed 0:04  ETA 0:27  reward=0.41
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace grpo {

// Not thread-safe: one owner thread draws the line. Owns its label and timings; writes to stderr.
class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  void advance(int64_t n = 1, const std::string& status = "");
  void finish(const std::string& status = "");
  static std::string format_duration(double seconds);  // 75 -> "1:15", 3725 -> "1:02:05"

 private:
  void draw(bool final_line);
  std::string label_, status_;
  int64_t total_, done_ = 0;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace grpo
