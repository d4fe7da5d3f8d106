#include "train/rollout_pool.h"

#include <chrono>
#include <future>
#include <iostream>
#include <mutex>

#include "common/error.h"
#include "train/weight_version.h"

namespace grpo {
namespace {

// Statuses that say the request is wrong (the same on every worker), not that the worker failed.
bool is_request_error(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT || code == grpc::StatusCode::FAILED_PRECONDITION ||
         code == grpc::StatusCode::OUT_OF_RANGE || code == grpc::StatusCode::NOT_FOUND;
}

}  // namespace

RolloutPool::RolloutPool(const std::vector<std::string>& addresses, int64_t timeout_ms, int reassign_rounds)
    : timeout_ms_(timeout_ms), reassign_rounds_(reassign_rounds) {
  if (addresses.empty()) throw InputError("rollout: no rollout worker addresses");
  workers_.reserve(addresses.size());
  for (const auto& a : addresses) {
    ClientOptions o;
    o.timeout_ms = timeout_ms;
    Worker& w = workers_.emplace_back();
    w.address = a;
    w.client = std::make_unique<rollout::RolloutClient>(a, o);
  }
}

size_t RolloutPool::live_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& w : workers_) n += w.alive;
  return n;
}

std::vector<std::vector<rollout::Completion>> RolloutPool::generate(const std::vector<rollout::GeneratePrompt>& prompts,
                                                                    const rollout::GenerationParams& params,
                                                                    int64_t min_version, bool record_routes) {
  std::vector<std::vector<rollout::Completion>> out(prompts.size());
  std::vector<size_t> pending(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) pending[i] = i;

  for (int round = 0; !pending.empty(); ++round) {
    std::vector<size_t> live;
    std::unique_lock<std::mutex> lock(mu_);
    for (size_t w = 0; w < workers_.size(); ++w)
      if (workers_[w].alive) live.push_back(w);
    if (live.empty() || round > reassign_rounds_) {
      std::string why;
      for (const auto& w : workers_)
        if (!w.last_error.empty()) why += "\n  " + w.address + ": " + w.last_error;
      throw InputError("rollout: " + std::to_string(pending.size()) + " prompts could not be generated (" +
                       std::to_string(live.size()) + " of " + std::to_string(workers_.size()) + " workers left after " +
                       std::to_string(round) + " rounds)" + why);
    }
    lock.unlock();
    // Contiguous shares, one call per live worker, all in parallel.
    std::vector<std::vector<size_t>> share(live.size());
    for (size_t i = 0; i < pending.size(); ++i) share[i * live.size() / pending.size()].push_back(pending[i]);
    std::vector<std::future<void>> calls;
    std::vector<std::vector<std::vector<rollout::Completion>>> got(live.size());
    std::vector<std::string> errors(live.size());
    std::exception_ptr request_error;  // the request itself was refused: no other worker will take it
    std::mutex request_error_mu;
    for (size_t s = 0; s < live.size(); ++s) {
      if (share[s].empty()) continue;
      calls.push_back(std::async(std::launch::async, [&, s] {
        rollout::GenerateCall call;
        for (size_t i : share[s]) call.prompts.push_back(prompts[i]);
        call.params = params;
        call.min_weight_version = min_version;
        call.timeout_ms = timeout_ms_;
        call.record_routes = record_routes;
        got[s].assign(share[s].size(), {});
        try {
          workers_[live[s]].client->generate(
              call, [&](size_t k, rollout::Completion&& c) { got[s][k].push_back(std::move(c)); });
        } catch (const RpcError& e) {
          if (is_request_error(e.code())) {
            std::lock_guard<std::mutex> lock(request_error_mu);
            request_error = std::current_exception();
          } else {
            errors[s] = e.what();
          }
        } catch (const std::exception& e) {
          errors[s] = e.what();
        }
      }));
    }
    for (auto& c : calls) c.get();
    if (request_error) std::rethrow_exception(request_error);
    std::vector<size_t> next;
    for (size_t s = 0; s < live.size(); ++s) {
      if (!errors[s].empty()) {
        Worker& w = workers_[live[s]];
        std::lock_guard<std::mutex> dead_lock(mu_);
        w.alive = false;
        w.last_error = errors[s];
        std::cerr << "rollout: worker " << w.address << " failed (" << errors[s] << "); its " << share[s].size()
                  << " prompts go to the other workers" << std::endl;
      }
      for (size_t k = 0; k < share[s].size(); ++k) {
        const size_t i = share[s][k];
        if (errors[s].empty() && int64_t(got[s][k].size()) == prompts[i].n) {
          std::sort(got[s][k].begin(), got[s][k].end(),
                    [](const auto& a, const auto& b) { return a.sample_index < b.sample_index; });
          out[i] = std::move(got[s][k]);
        } else {
          next.push_back(i);  // partial groups are generated again, whole (same seed, same samples)
        }
      }
    }
    pending = std::move(next);
  }
  return out;
}

void RolloutPool::readmit(int64_t version) {
  std::vector<size_t> dead;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t w = 0; w < workers_.size(); ++w)
      if (!workers_[w].alive) dead.push_back(w);
  }
  std::vector<std::future<bool>> answers;
  answers.reserve(dead.size());
  for (size_t w : dead)
    answers.push_back(std::async(std::launch::async, [this, w] {
      ClientOptions o;
      o.timeout_ms = kProbeTimeoutMs;
      try {
        rollout::RolloutClient(workers_[w].address, o).status();
        return true;
      } catch (const std::exception&) {
        return false;
      }
    }));
  for (size_t k = 0; k < dead.size(); ++k) {
    if (!answers[k].get()) continue;
    Worker& w = workers_[dead[k]];
    std::lock_guard<std::mutex> lock(mu_);
    w.alive = true;
    std::cerr << "rollout: worker " << w.address << " answers again; it rejoins with weight version " << version
              << std::endl;
  }
}

PublishStats RolloutPool::publish(int64_t version, const std::map<std::string, at::Tensor>& state, bool fp8,
                                  rollout::UpdatePart part) {
  const auto t0 = std::chrono::steady_clock::now();
  readmit(version);
  std::vector<std::future<std::pair<rollout::WeightUpdateStats, std::string>>> calls;
  std::vector<size_t> sent_to;
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (!workers_[w].alive) continue;
    sent_to.push_back(w);
    calls.push_back(std::async(std::launch::async, [&, w]() -> std::pair<rollout::WeightUpdateStats, std::string> {
      try {
        return {workers_[w].client->update_weights(version, state, fp8, rollout::kWeightChunkBytes, part), ""};
      } catch (const std::exception& e) {
        return {{}, e.what()};
      }
    }));
  }
  lock.unlock();  // the calls take long; generate() may go on meanwhile
  PublishStats stats;
  stats.version = version;
  std::string last_error;
  for (size_t k = 0; k < calls.size(); ++k) {
    auto [sent, error] = calls[k].get();
    Worker& w = workers_[sent_to[k]];
    if (!error.empty()) {
      std::lock_guard<std::mutex> dead_lock(mu_);
      last_error = error;
      w.alive = false;
      w.last_error = error;
      std::cerr << "rollout: worker " << w.address << " dropped: weight update " << version << " failed (" << error
                << ")" << std::endl;
      continue;
    }
    stats.tensors = sent.tensors;
    stats.bytes += sent.bytes;
    stats.workers += 1;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats.workers == 0)
    throw InputError("rollout: weight version " + std::to_string(version) + " reached no worker" +
                     (last_error.empty() ? " (none is live)" : " (last error: " + last_error + ")"));
  return stats;
}

}  // namespace grpo
