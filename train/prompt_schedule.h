// Which prompts a step trains on, and the sampling seed of each: pure functions of the run seed
// and the step, so a resumed run (or a prompt moved to another rollout worker) draws exactly the
// same prompts and samples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace grpo {

// The order in which step `step` draws prompts from a dataset of `n` items: a seeded permutation
// of 0..n-1 (a fresh one per step; across steps prompts are drawn with replacement). The first
// prompts_per_step are the step's prompts; dynamic sampling refills from the ones after.
std::vector<size_t> step_prompt_order(size_t n, uint64_t seed, int64_t step);

// The seed of a prompt's group at a step (SplitMix64 of the three).
uint64_t group_seed(uint64_t run_seed, int64_t step, const std::string& prompt_id);

}  // namespace grpo
