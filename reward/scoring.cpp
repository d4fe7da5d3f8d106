#include "reward/scoring.h"

namespace grpo::reward {

VerifyResult score(const Verifier& verifier, const VerifyRequest& request,
                   const std::map<std::string, double>& weights) {
  const int64_t bytes = static_cast<int64_t>(request.completion.size());
  if (bytes > request.limits.max_completion_bytes) {
    VerifyResult r;
    r.reason = "completion too long: " + std::to_string(bytes) + " bytes > limit " +
               std::to_string(request.limits.max_completion_bytes);
    return r;
  }
  VerifyResult r = verifier.verify(request);
  if (weights.empty()) return r;
  double total = 0;
  for (const auto& [name, w] : weights) {
    auto it = r.components.find(name);
    if (it == r.components.end()) {
      std::string have;
      for (const auto& c : r.components) have += (have.empty() ? "" : ", ") + c.first;
      throw InputError("weights: verifier '" + verifier.name() + "' has no component '" + name +
                       "' (it has: " + (have.empty() ? "none" : have) + ")");
    }
    total += w * it->second;
  }
  r.reward = total;
  return r;
}

}  // namespace grpo::reward
