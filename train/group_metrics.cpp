#include "train/group_metrics.h"

#include <algorithm>
#include <cmath>

namespace grpo {

bool has_reward_variance(const ScoredGroup& group) {
  for (const auto& c : group.completions)
    if (c.reward != group.completions.front().reward) return true;
  return false;
}

std::map<std::string, double> group_metrics(const std::vector<ScoredGroup>& groups) {
  std::map<std::string, double> m;
  double n = 0, sum = 0, sq = 0, correct = 0, len = 0, clipped = 0, max_len = 0;
  double solved = 0, unsolved = 0, mixed = 0;
  std::map<std::string, std::pair<double, double>> components;  // name -> (sum, count)
  for (const auto& g : groups) {
    int64_t g_correct = 0;
    for (const auto& c : g.completions) {
      n += 1;
      sum += c.reward;
      sq += c.reward * c.reward;
      correct += c.correct;
      g_correct += c.correct;
      len += double(c.token_ids.size());
      max_len = std::max(max_len, double(c.token_ids.size()));
      clipped += c.finish_reason == FinishReason::kLength;
      for (const auto& [name, v] : c.reward_components) {
        components[name].first += v;
        components[name].second += 1;
      }
    }
    solved += !g.completions.empty() && g_correct == int64_t(g.completions.size());
    unsolved += g_correct == 0;
    mixed += has_reward_variance(g);
  }
  if (n == 0) return m;
  const double mean = sum / n;
  m["reward/mean"] = mean;
  m["reward/std"] = n > 1 ? std::sqrt(std::max(0.0, (sq - n * mean * mean) / (n - 1))) : 0.0;
  for (const auto& [name, s] : components) m["reward/" + name + "/mean"] = s.first / s.second;
  m["accuracy"] = correct / n;
  m["response_length/mean"] = len / n;
  m["response_length/max"] = max_len;
  m["response_clipped_fraction"] = clipped / n;
  const double G = double(groups.size());
  m["groups/solved_fraction"] = solved / G;
  m["groups/unsolved_fraction"] = unsolved / G;
  m["groups/mixed_fraction"] = mixed / G;
  return m;
}

SampleGroup sample_group(const ScoredGroup& group) {
  SampleGroup s{group.step, group.prompt_id, group.prompt_text, group.reference_answer, {}};
  for (const auto& c : group.completions) s.completions.push_back({c.text, c.reward, c.correct, c.reward_reason});
  return s;
}

}  // namespace grpo
