// The report's samples section from a run's experience store: the best, the worst and a random
// group of the last steps, so a reader sees what the policy writes and how the verifier judged it.
#pragma once
#include <cstdint>
#include <vector>

#include "metrics/report.h"
#include "store/experience_store.h"

namespace grpo {

// Among the intact groups of the last `last_steps` steps that have a record (the store's last
// step and the ones before it; at most `max_groups` groups, the newest steps first, so a large run
// decodes a bounded amount), picks the group with the highest mean reward ("best"), the one with the
// lowest ("worst"; the first of equals) and one of the others drawn with `seed` ("random"); a group
// is shown once, so fewer than three come back when there are fewer groups. None for an empty
// store. StoreError if reading fails. Thread-safe like the store's reads.
std::vector<ReportSample> report_samples(const ExperienceStore& store, int64_t last_steps = 3, size_t max_groups = 64,
                                         uint64_t seed = 0);

}  // namespace grpo
