#include "common/kill_point.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace grpo {
namespace {

struct Target {
  std::string name;  // empty: no kill point armed
  long hit = 1;      // die at this hit (1-based)
  std::atomic<long> seen{0};
};

Target& target() {
  static Target* t = [] {
    auto* out = new Target;  // lives until exit: kill points may be reached during static destruction
    const char* env = std::getenv("GRPO_KILL_POINT");
    if (!env || !*env) return out;
    std::string spec(env);
    const auto at = spec.rfind('@');
    if (at != std::string::npos) {
      char* end = nullptr;
      const long n = std::strtol(spec.c_str() + at + 1, &end, 10);
      if (at + 1 == spec.size() || *end != '\0' || n < 1) {
        std::cerr << "GRPO_KILL_POINT='" << spec << "': expected NAME or NAME@N with N >= 1; ignored" << std::endl;
        return out;
      }
      out->hit = n;
      spec.resize(at);
    }
    out->name = spec;
    return out;
  }();
  return *t;
}

}  // namespace

void kill_point(const char* name) {
  Target& t = target();
  if (t.name.empty() || t.name != name) return;
  if (t.seen.fetch_add(1) + 1 == t.hit) raise(SIGKILL);
}

}  // namespace grpo
