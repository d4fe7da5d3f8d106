// Weight versions: what the learner calls each set of weights it publishes to the rollout workers,
// and what every completion records. A version is (run epoch, step) in one int64, ordered like the
// pair: the epoch counts the starts of the run (ExperienceStore::begin_run), the step is the number
// of updates the weights have had. So versions are unique within a run and increase across
// restarts: a learner resumed from an older checkpoint publishes versions above those its previous
// start left on still-running workers, and brings them back to its own weights.
//
//   version = epoch << 32 | step        epoch in [0, 2^31), step in [0, 2^32)
//
// Pure functions; thread-safe.
#pragma once
#include <cstdint>
#include <string>

namespace grpo {

constexpr int64_t kMaxVersionStep = (int64_t{1} << 32) - 1;

constexpr int64_t weight_version(int64_t epoch, int64_t step) { return epoch << 32 | step; }
constexpr int64_t version_step(int64_t version) { return version & kMaxVersionStep; }
constexpr int64_t version_epoch(int64_t version) { return version >> 32; }

// "4294967299 (run epoch 1, step 3)", for logs and errors.
inline std::string describe_version(int64_t version) {
  return std::to_string(version) + " (run epoch " + std::to_string(version_epoch(version)) + ", step " +
         std::to_string(version_step(version)) + ")";
}

}  // namespace grpo
