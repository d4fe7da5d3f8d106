#include "train/ep_publisher.h"

#include <algorithm>
#include <memory>

#include "common/error.h"
#include "learner/expert_parallel.h"

namespace grpo {

EpPublishOptions EpPublishOptions::from_config(const Config& s) {
  s.require_known({"rollout", "every", "fp8", "timeout_ms"});
  EpPublishOptions o;
  if (!s.has("rollout")) throw InputError(s.where("rollout") + ": required (the rollout workers' addresses)");
  o.rollout = s.get<std::vector<std::string>>("rollout");
  if (o.rollout.empty()) throw InputError(s.where("rollout") + ": expected at least one address");
  o.every = s.get<int64_t>("every", o.every);
  if (o.every < 0) throw InputError(s.where("every") + ": expected an integer >= 0");
  o.fp8 = s.get<bool>("fp8", o.fp8);
  o.timeout_ms = s.get<int64_t>("timeout_ms", o.timeout_ms);
  if (o.timeout_ms < 1) throw InputError(s.where("timeout_ms") + ": expected an integer >= 1");
  return o;
}

bool EpPublishOptions::due(int64_t steps_done, int64_t steps) const {
  return steps_done == steps || (every > 0 && steps_done % every == 0);
}

std::map<std::string, double> EpPublishStats::metrics() const {
  std::map<std::string, double> m;
  double total = 0, slowest = 0;
  for (size_t r = 0; r < bytes.size(); ++r) {
    const std::string rank = "sync/rank" + std::to_string(r) + "/";
    m[rank + "tensors"] = double(tensors[r]);
    m[rank + "bytes"] = double(bytes[r]);
    m[rank + "seconds"] = seconds[r];
    total += double(bytes[r]);
    slowest = std::max(slowest, seconds[r]);
  }
  m["time/sync"] = slowest;
  m["sync/bytes"] = total;
  m["sync/gb_per_s"] = slowest > 0 ? total / slowest / 1e9 : 0;
  m["sync/workers"] = double(workers);
  m["sync/version"] = double(version);
  return m;
}

EpPublisher::EpPublisher(const EpPublishOptions& options, Distributed& dist)
    : options_(options), dist_(dist), pool_(options.rollout, options.timeout_ms, /*reassign_rounds=*/0) {}

EpPublishStats EpPublisher::publish(int64_t version, const CausalLM& model) {
  const int rank = dist_.rank(), world = dist_.size();
  const PublishStats mine = pool_.publish(version, rank_shard(model, rank), options_.fp8, {rank, world});
  // [4, R]: column r holds rank r's tensors, bytes, seconds, workers; summed, every rank has all.
  at::Tensor figures = at::zeros({4, world}, at::kDouble);
  figures[0][rank] = double(mine.tensors);
  figures[1][rank] = double(mine.bytes);
  figures[2][rank] = mine.seconds;
  figures[3][rank] = double(mine.workers);
  dist_.all_reduce_sum(figures);
  EpPublishStats s;
  s.version = version;
  s.workers = static_cast<int64_t>(figures[3].min().item<double>());
  for (int r = 0; r < world; ++r) {
    s.tensors.push_back(static_cast<int64_t>(figures[0][r].item<double>()));
    s.bytes.push_back(static_cast<int64_t>(figures[1][r].item<double>()));
    s.seconds.push_back(figures[2][r].item<double>());
  }
  return s;
}

PretrainStepHook ep_publish_hook(const EpPublishOptions& options, Distributed& dist, int64_t steps) {
  auto publisher = std::make_shared<EpPublisher>(options, dist);
  return [publisher, options, steps](int64_t steps_done, const DeepseekModel& model) -> std::map<std::string, double> {
    if (!options.due(steps_done, steps)) return {};
    return publisher->publish(steps_done, model).metrics();
  };
}

}  // namespace grpo
