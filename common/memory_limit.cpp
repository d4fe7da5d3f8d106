#include "common/memory_limit.h"

#include <unistd.h>

#include <cstdio>

namespace grpo {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  for (; b >= 1024 && u < 6; ++u) b /= 1024;
  char text[48];
  std::snprintf(text, sizeof text, "%.1f %s", b, units[u]);
  return text;
}

}  // namespace

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

std::string memory_shortfall(double bytes) {
  const int64_t limit = physical_memory_bytes();
  if (limit == 0 || bytes <= static_cast<double>(limit)) return "";
  return "needs " + human_bytes(bytes) + ", more than the " + human_bytes(static_cast<double>(limit)) +
         " of memory of this machine";
}

}  // namespace grpo
