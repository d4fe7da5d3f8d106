#include "reward/scorer.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "reward/scoring.h"
#include "reward/server.h"
#include "reward/wire.h"

namespace grpo::reward {

Scorer Scorer::local(const Config& reward_config) {
  Scorer s;
  s.registry_ = registry_from_config(reward_config);
  s.limits_ = server_options_from_config(reward_config).limits;
  return s;
}

Scorer Scorer::remote(const std::string& address, int64_t timeout_ms) {
  Scorer s;
  ClientOptions o;
  o.timeout_ms = timeout_ms;
  o.retries = 2;
  s.client_ = std::make_shared<const RewardClient>(address, o);
  for (const auto& v : s.client_->list_verifiers()) s.remote_names_.push_back(v.name());
  s.limits_ = Limits{0, 0, 0, 0};
  return s;
}

void Scorer::require(const std::string& name) const {
  if (registry_) {
    registry_->get(name);  // UnknownVerifier names the registered ones
    return;
  }
  if (std::find(remote_names_.begin(), remote_names_.end(), name) != remote_names_.end()) return;
  std::string names;
  for (const auto& n : remote_names_) names += (names.empty() ? "" : ", ") + n;
  throw InputError("unknown verifier '" + name + "' at " + client_->address() + " (registered: " + names + ")");
}

std::vector<ScoreOutcome> Scorer::score(const std::vector<VerifyRequest>& requests,
                                        const std::vector<std::string>& verifiers,
                                        const std::vector<std::map<std::string, double>>& weights, int threads,
                                        size_t batch, const std::function<void(int64_t)>& on_scored) const {
  if (verifiers.size() != requests.size() || (!weights.empty() && weights.size() != requests.size()))
    throw std::invalid_argument("Scorer::score: requests, verifiers and weights differ in length");
  std::vector<ScoreOutcome> out(requests.size());
  if (client_) {
    batch = std::max<size_t>(1, batch);
    for (size_t b = 0; b < requests.size(); b += batch) {
      std::vector<v1::ScoreRequest> protos;
      for (size_t i = b; i < std::min(requests.size(), b + batch); ++i) {
        protos.push_back(request_to_proto(requests[i], verifiers[i], std::to_string(i)));
        if (!weights.empty())
          for (const auto& [name, w] : weights[i]) (*protos.back().mutable_weights())[name] = w;
      }
      const std::vector<v1::ScoreResponse> responses = client_->score_batch(protos);  // RpcError: give up
      for (size_t j = 0; j < responses.size(); ++j) {
        if (responses[j].error_code() != 0)
          out[b + j].error = responses[j].error_message();
        else
          out[b + j].result = result_from_proto(responses[j]);
      }
      if (on_scored) on_scored(static_cast<int64_t>(responses.size()));
    }
    return out;
  }
  static const std::map<std::string, double> kNoWeights;
  std::atomic<size_t> next{0};
  std::mutex mu;  // serialises on_scored
  auto work = [&] {
    for (size_t i; (i = next++) < requests.size();) {
      try {
        out[i].result =
            reward::score(*registry_->get(verifiers[i]), requests[i], weights.empty() ? kNoWeights : weights[i]);
      } catch (const std::exception& e) {
        out[i].error = e.what();
      }
      if (on_scored) {
        std::lock_guard<std::mutex> lock(mu);
        on_scored(1);
      }
    }
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(requests.size())));
  if (n == 1) {
    work();
    return out;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  return out;
}

}  // namespace grpo::reward
