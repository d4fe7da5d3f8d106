// Differences between two configs, key by key (a run's saved config.yaml and the one it is resumed
// with). Pure functions.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "common/config.h"

namespace grpo {

// One line "key: OLD -> NEW" per dotted key whose value differs (a list or map compares as its
// YAML flow text; an absent key shows as "(unset)"), in key order; keys in `ignored` are skipped.
std::vector<std::string> config_differences(const Config& before, const Config& now,
                                            const std::set<std::string>& ignored = {});

}  // namespace grpo
