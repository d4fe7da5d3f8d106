// Helpers every benchmark shares: best-of-N wall time, seconds since a point, the machine's load
// average (recorded beside each figure: a loaded machine makes timings rough), common flags.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

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

// The flags of the engine benchmarks: --threads N, --repeats R (when `takes_repeats`), --out FILE,
// --quick. Returns false, after printing "usage: `usage`" on stderr, for anything else.
struct Flags {
  int threads = 1, repeats = 3;
  bool quick = false;
  std::string out;  // keeps the caller's default unless --out is given
};

inline bool parse_flags(int argc, char** argv, bool takes_repeats, const std::string& usage, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value)
      f.threads = std::atoi(argv[++i]);
    else if (takes_repeats && !std::strcmp(argv[i], "--repeats") && has_value)
      f.repeats = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--out") && has_value)
      f.out = argv[++i];
    else if (!std::strcmp(argv[i], "--quick"))
      f.quick = true;
    else {
      std::cerr << "usage: " << usage << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace grpo::bench
