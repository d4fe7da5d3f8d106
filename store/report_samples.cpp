#include "store/report_samples.h"

#include <algorithm>
#include <random>

namespace grpo {

namespace {

double mean_reward(const ScoredGroup& g) {
  double sum = 0;
  for (const Completion& c : g.completions) sum += c.reward;
  return g.completions.empty() ? 0 : sum / double(g.completions.size());
}

ReportSample to_sample(const std::string& label, const ScoredGroup& g) {
  ReportSample s{label, g.step, g.prompt_id, g.prompt_text, {}};
  for (const Completion& c : g.completions) s.completions.push_back({c.text, c.reward, c.reward_reason});
  return s;
}

}  // namespace

std::vector<ReportSample> report_samples(const ExperienceStore& store, int64_t last_steps, size_t max_groups,
                                         uint64_t seed) {
  const int64_t last = store.last_step();
  std::vector<std::pair<GroupKey, double>> groups;  // newest step first, each in key order
  for (int64_t step = last; step >= 0 && step > last - last_steps && groups.size() < max_groups; --step)
    store.scan(step, step, [&](const GroupKey& key, const ScoredGroup& g) {
      groups.emplace_back(key, mean_reward(g));
      return groups.size() < max_groups;
    });
  if (groups.empty()) return {};
  auto by_mean = [](const auto& a, const auto& b) { return a.second < b.second; };
  const size_t worst = std::min_element(groups.begin(), groups.end(), by_mean) - groups.begin();
  // The last of equals for the best: with all rewards equal, best and worst are different groups.
  size_t best = 0;
  for (size_t i = 1; i < groups.size(); ++i)
    if (groups[i].second >= groups[best].second) best = i;
  std::vector<std::pair<std::string, size_t>> picks{{"best", best}};
  if (worst != best) picks.emplace_back("worst", worst);
  std::vector<size_t> others;
  for (size_t i = 0; i < groups.size(); ++i)
    if (i != best && i != worst) others.push_back(i);
  if (!others.empty()) {
    std::mt19937_64 rng(seed);  // the engine's sequence is fixed by the standard; no distribution
    picks.emplace_back("random", others[rng() % others.size()]);
  }
  std::vector<ReportSample> out;
  for (const auto& [label, i] : picks) {
    ScoredGroup g;
    if (store.get(groups[i].first, &g).ok()) out.push_back(to_sample(label, g));
  }
  return out;
}

}  // namespace grpo
