// What a step's scored groups say about the policy, as metric name -> value (metrics/metrics.h
// names): reward/mean, reward/std, reward/<component>/mean, accuracy, response_length/mean,
// response_length/max, response_clipped_fraction, groups/solved_fraction (all G correct),
// groups/unsolved_fraction (none correct), groups/mixed_fraction (rewards differ: what dynamic
// sampling keeps). Pure.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "http/recent_samples.h"
#include "learner/scored_group.h"

namespace grpo {

std::map<std::string, double> group_metrics(const std::vector<ScoredGroup>& groups);

// Whether the group's rewards differ (a group whose rewards are all equal has zero advantage
// everywhere and teaches nothing; dynamic sampling drops it).
bool has_reward_variance(const ScoredGroup& group);

// The group as the live view's /samples shows it (http/recent_samples.h).
SampleGroup sample_group(const ScoredGroup& group);

}  // namespace grpo
