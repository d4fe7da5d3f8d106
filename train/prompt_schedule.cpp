#include "train/prompt_schedule.h"

#include <numeric>

#include "common/hash.h"

namespace grpo {
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
