#include "eval/eval.h"

#include <algorithm>

#include "common/error.h"

namespace grpo {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw InputError("pass@k: need 1 <= k <= n and 0 <= c <= n, got n=" + std::to_string(n) +
                     " c=" + std::to_string(c) + " k=" + std::to_string(k));
  if (n - c < k) return 1.0;  // every k-subset holds a correct sample
  double all_wrong = 1.0;     // C(n−c, k) / C(n, k) as a product, no large binomials
  for (int64_t i = n - c + 1; i <= n; ++i) all_wrong *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - all_wrong;
}

bool majority_correct(const std::vector<EvalSample>& samples, int64_t k) {
  if (k < 1 || k > static_cast<int64_t>(samples.size()))
    throw InputError("maj@k: need 1 <= k <= " + std::to_string(samples.size()) + ", got " + std::to_string(k));
  struct Vote {
    int64_t count = 0;
    int64_t first = 0;  // sample index of the first vote
  };
  std::map<std::string, Vote> votes;
  for (int64_t i = 0; i < k; ++i) {
    std::string answer = trim(samples[i].extracted);
    if (answer.empty()) continue;
    auto [it, fresh] = votes.try_emplace(answer, Vote{0, i});
    ++it->second.count;
  }
  const Vote* best = nullptr;
  for (const auto& [answer, v] : votes)
    if (!best || v.count > best->count || (v.count == best->count && v.first < best->first)) best = &v;
  return best && samples[best->first].correct;
}

EvalSummary summarize_eval(const std::vector<std::vector<EvalSample>>& per_prompt, const std::vector<int64_t>& ks) {
  if (per_prompt.empty()) throw InputError("eval: no prompts to summarise");
  EvalSummary s;
  s.prompts = static_cast<int64_t>(per_prompt.size());
  int64_t correct = 0, formatted = 0, answered = 0, truncated = 0, tokens = 0;
  double reward = 0;
  for (size_t p = 0; p < per_prompt.size(); ++p) {
    const auto& samples = per_prompt[p];
    const int64_t n = static_cast<int64_t>(samples.size());
    if (n == 0) throw InputError("eval: prompt " + std::to_string(p) + " has no samples");
    int64_t c = 0;
    for (const EvalSample& x : samples) {
      c += x.correct;
      formatted += x.format_ok;
      answered += !trim(x.extracted).empty();
      truncated += x.truncated;
      tokens += x.tokens;
      reward += x.reward;
    }
    correct += c;
    s.samples += n;
    for (int64_t k : ks) {
      if (k < 1 || k > n)
        throw InputError("eval: k=" + std::to_string(k) + " needs 1 <= k <= the samples per prompt (" +
                         std::to_string(n) + " for prompt " + std::to_string(p) + ")");
      s.pass_at[k] += pass_at_k(n, c, k) / s.prompts;
      s.maj_at[k] += majority_correct(samples, k) ? 1.0 / s.prompts : 0.0;
    }
  }
  const double total = static_cast<double>(s.samples);
  s.pass1 = correct / total;
  s.mean_reward = reward / total;
  s.mean_tokens = tokens / total;
  s.format_rate = formatted / total;
  s.answer_rate = answered / total;
  s.truncated_rate = truncated / total;
  return s;
}

}  // namespace grpo
