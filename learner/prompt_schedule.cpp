#include "learner/prompt_schedule.h"

#include <numeric>

namespace grpo {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

std::vector<size_t> step_prompt_order(size_t n, uint64_t seed, int64_t step) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  uint64_t state = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(step) + 1));
  for (size_t i = n; i > 1; --i) {  // Fisher-Yates with a SplitMix64 stream
    state = splitmix64(state);
    std::swap(order[i - 1], order[state % i]);
  }
  return order;
}

uint64_t group_seed(uint64_t run_seed, int64_t step, const std::string& prompt_id) {
  return splitmix64(splitmix64(run_seed) ^ splitmix64(static_cast<uint64_t>(step)) ^ fnv1a(prompt_id));
}

}  // namespace grpo
