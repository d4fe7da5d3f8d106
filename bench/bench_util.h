// Timing helpers every benchmark shares: best-of-N wall time, seconds since a point, and the
// machine's load average (recorded beside each figure: a loaded machine makes timings rough).
#pragma once
#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>

#include "common/clock.h"

namespace grpo::bench {

using grpo::Clock;
using grpo::seconds_since;

// Best wall time of `reps` runs after one warm-up run.
inline double seconds(const std::function<void()>& f, int reps) {
  f();
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// The 1-minute load average (/proc/loadavg), -1 when unreadable.
inline double load_average() {
  double l = -1;
  std::ifstream("/proc/loadavg") >> l;
  return l;
}

}  // namespace grpo::bench
