#include "kernels/cpu_features.h"

#include <fstream>
#include <sstream>

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

}  // namespace grpo::kernels
