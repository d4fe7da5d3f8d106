#include "kernels/cpu_features.h"

#include <ATen/Parallel.h>

#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace grpo::kernels {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

namespace {

std::string read_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    for (std::string w; words >> w;)
      if (w == "avx512_bf16" || w == "amx_bf16") found += (found.empty() ? "" : ", ") + w;
    break;
  }
  return found;
}

}  // namespace

std::string cpu_native_bf16() {
  static const std::string found = read_native_bf16();
  return found;
}

int kernel_threads() {
  std::mutex mu;
  std::set<std::thread::id> seen;
  at::parallel_for(0, 64, 1, [&](int64_t begin, int64_t end) {
    (void)begin, (void)end;  // each thread of the team runs one chunk
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  return int(seen.size());
}

}  // namespace grpo::kernels
