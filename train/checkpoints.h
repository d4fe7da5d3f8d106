// The run's checkpoint directory (<out_dir>/checkpoints): one step-NNNNNN directory per saved step
// (learner/trainer.h writes each atomically), the newest run.keep_checkpoints kept. Other names
// (a staging "step-000004.tmp", stray files) are ignored. Pure functions over the file system;
// not safe against another process pruning the same directory.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace grpo {

// "step-000012" for 12.
std::string checkpoint_name(int64_t step);

// The checkpoint directories in `dir` (absent: none), newest (highest step) first.
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& dir);

// Deletes all but the `keep` newest (keep >= 1).
void prune_checkpoints(const std::filesystem::path& dir, int keep);

}  // namespace grpo
