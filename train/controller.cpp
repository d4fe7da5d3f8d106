#include "train/controller.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/kill_point.h"
#include "common/progress.h"
#include "dataset/prompt_dataset.h"
#include "http/address.h"
#include "http/monitor.h"
#include "learner/expert_parallel.h"
#include "learner/trainer.h"
#include "metrics/metrics.h"
#include "metrics/report.h"
#include "model/device.h"
#include "model/pretrained.h"
#include "reward/client.h"
#include "rollout/model_tokenizer.h"
#include "store/experience_store.h"
#include "store/report_samples.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/checkpoint_files.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoints.h"
#include "train/ep_publisher.h"
#include "train/group_metrics.h"
#include "train/heldout_eval.h"
#include "train/local_services.h"
#include "train/prompt_schedule.h"
#include "train/rollout_pool.h"
#include "train/run_config.h"
#include "train/sample_and_score.h"
#include "train/weight_version.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

// What the generation thread hands the trainer: every group generated (or found in the store)
// for one step, and how long that took.
struct StepGroups {
  int64_t step = 0;
  std::vector<ScoredGroup> groups;
  int64_t reused = 0;  // groups found in the store (resume)
  SampleStats sampling;
  double store_s = 0;
};

// The groups rank 0 sends the other ranks for one step.
std::vector<ScoredGroup> unpack_groups(const std::string& bytes, const std::string& key) {
  std::string error;
  auto groups = decode_scored_groups(bytes, &error);
  if (!groups) throw DistributedError("message '" + key + "': " + error);
  return std::move(*groups);
}

// Posted by rank 0 when step N's groups are ready to broadcast.
std::string ready_key(int64_t step) { return "train/step-" + std::to_string(step) + "/ready"; }
const char* const kAddressesKey = "train/rollout-addresses";
const char* const kEpochKey = "train/run-epoch";

// Why a step trained no group: what the warning on the progress line says.
std::string no_group_reason(const std::vector<ScoredGroup>& groups) {
  if (groups.empty()) return "no group was generated";
  std::set<double> rewards;
  for (const auto& g : groups)
    for (const auto& c : g.completions) rewards.insert(c.reward);
  std::ostringstream why;
  why << "every one of its " << groups.size() << " groups had equal rewards";
  if (rewards.size() == 1) why << " (every reward " << std::fixed << std::setprecision(3) << *rewards.begin() << ")";
  why << ", and dynamic sampling trains only on groups whose rewards differ";
  return why.str();
}

class Loop {
 public:
  Loop(const Config& config, bool progress, const LearnerRanks& ranks, const StopSignals* signals)
      : config_(config),
        cfg_(run_config_from(config)),
        progress_(progress),
        dist_(ranks.dist),
        wait_(ranks.wait),
        signals_(signals) {}

  TrainSummary run() {
    if (lead())
      std::cerr << "train: " << config_.source() << ": run directory " << cfg_.run.out_dir << ", model "
                << cfg_.model.path << ", " << cfg_.train.steps << " steps" << std::endl;
    setup();
    TrainSummary summary;
    summary.out_dir = cfg_.run.out_dir;
    summary.start_step = trainer_->steps_done();
    const int64_t start = summary.start_step;
    if (start >= cfg_.train.steps) {
      if (lead()) {
        std::cerr << "train: " << start << " of " << cfg_.train.steps << " steps already done (" << cfg_.run.out_dir
                  << ")" << std::endl;
        write_report(cfg_.run.out_dir, report_options());
      }
      summary.steps_done = start;
      return summary;
    }
    if (!lead()) {
      follow(start);
      summary.steps_done = trainer_->steps_done();
      return summary;
    }
    // Every start sends the workers its weights under this start's epoch: workers left running by
    // an earlier start (ahead of a resumed checkpoint, or on another run's weights) come back to them.
    publish(start);
    // Evaluations at the start and every eval_every steps: a resumed run keeps that schedule.
    if (cfg_.train.eval_every > 0 && start % cfg_.train.eval_every == 0)
      summary.first_eval_accuracy = resumed_eval_ >= 0 ? resumed_eval_ : evaluate(start);

    if (http_) http_->set_ready(true);
    std::thread producer([&] { produce(start); });
    bar_.emplace("train", cfg_.train.steps, progress_, start);
    int64_t done = start;
    try {
      for (int64_t step = start; step < cfg_.train.steps && !stop_requested(); ++step) {
        std::optional<StepGroups> batch = take(step);
        if (!batch) break;  // stopped while the step's groups were being made
        const std::map<std::string, double> m = train_step(*batch);
        if (m.at("groups/trained") == 0) ++summary.steps_trained_no_group;
        done = step + 1;
        if (checkpoint_due(done)) checkpoint(done);  // before evaluating: the other ranks take part
        if (cfg_.train.eval_every > 0 && (done % cfg_.train.eval_every == 0 || done == cfg_.train.steps))
          summary.last_eval_accuracy = evaluate(done);
        write_report(cfg_.run.out_dir, report_options());
        bar_->advance(1, status_line(m));
      }
    } catch (...) {
      stop_producer();
      producer.join();
      throw;
    }
    stop_producer();  // a stop signal may end the loop early
    producer.join();
    bar_->finish();
    if (stop_requested() && done < cfg_.train.steps) {
      summary.stopped_by = signals_->received();
      if (done > start && !checkpoint_due(done)) checkpoint(done);
    }
    summary.steps_done = trainer_->steps_done();
    return summary;
  }

 private:
  bool lead() const { return !dist_ || dist_->rank() == 0; }
  // The report's samples: the best, worst and a random group of the last steps in the store.
  ReportOptions report_options() const {
    ReportOptions o;
    o.samples = report_samples(*store_);
    return o;
  }

  bool stop_requested() const { return signals_ && signals_->received() != 0; }

  // A line of its own on stderr, above the progress line once there is one.
  void say(const std::string& line) {
    if (bar_)
      bar_->note(line);
    else
      std::cerr << line << std::endl;
  }

  // The progress line's status after a step: its rewards, and the newest held-out accuracy with
  // the step it was measured at.
  std::string status_line(const std::map<std::string, double>& m) const {
    auto get = [&](const char* key) {  // a step without any group has no reward figures
      auto it = m.find(key);
      return it == m.end() ? 0.0 : it->second;
    };
    std::ostringstream status;
    status << std::fixed << std::setprecision(3) << "reward=" << get("reward/mean") << " acc=" << get("accuracy")
           << " len=" << std::setprecision(1) << get("response_length/mean");
    if (get("groups/trained") == 0) status << " trained=0";
    if (last_eval_step_ >= 0) status << " heldout@" << last_eval_step_ << "=" << std::setprecision(3) << last_eval_;
    return status.str();
  }
  bool checkpoint_due(int64_t done) const {
    return done % cfg_.train.checkpoint_every == 0 || done == cfg_.train.steps;
  }

  // An expert-parallel rank other than 0: the trainer steps on rank 0's groups, publishing and
  // checkpoints, in the order rank 0 does them.
  void follow(int64_t start) {
    publish(start);
    for (int64_t step = start; step < cfg_.train.steps; ++step) {
      dist_->fetch(ready_key(step), wait_);  // rank 0 may be generating: the long wait is here
      std::string bytes;
      dist_->broadcast(bytes);
      const std::vector<ScoredGroup> used = unpack_groups(bytes, ready_key(step));
      if (used.empty())
        trainer_->skip_step();
      else
        trainer_->step(used);
      publish(step + 1);
      if (checkpoint_due(step + 1)) checkpoint(step + 1);
    }
  }

  void setup() {
    const std::string http_address = http_address_from(config_);
    if (lead() && !http_address.empty())
      http_ = std::make_unique<Monitor>(MonitorOptions{http_address, cfg_.run.out_dir, "train"});
    at::set_num_threads(cfg_.run.threads);
    trainer_options_ = trainer_options_from_config(config_.sub("trainer"));
    // The trainer's log-probs must be those of the distribution the rollouts sampled from.
    const double temperature = cfg_.rollout.sampling.sampling.temperature;
    if (config_.has("trainer.temperature") && trainer_options_.temperature != temperature)
      throw InputError(config_.where("trainer.temperature") + ": must equal rollout.sampling.temperature (" +
                       std::to_string(temperature) + ") or be left out");
    trainer_options_.temperature = temperature > 0 ? temperature : 1.0;
    if (temperature > 0) {  // greedy rollouts cut nothing
      trainer_options_.top_p = cfg_.rollout.sampling.sampling.top_p;
      trainer_options_.top_k = cfg_.rollout.sampling.sampling.top_k;
    }
    if (trainer_options_.threads == 0) trainer_options_.threads = cfg_.run.threads;
    ModelOptions model_options = trainer_options_.model_options();
    model_options.device = cfg_.run.device;
    if (dist_)
      model_options.device =
          expert_parallel_device(model_options.device, cfg_.run.device_auto, config_.where("run.device"));
    if (dist_) {  // this rank's expert shard
      model_options.expert_rank = dist_->rank();
      model_options.expert_ranks = dist_->size();
    }
    std::shared_ptr<CausalLM> policy = load_causal_lm(cfg_.model.path, model_options);
    trainer_ = std::make_unique<Trainer>(policy, trainer_options_, dist_);
    resume();
    if (!lead()) {  // rank 0's rollout workers, to publish this rank's experts to
      std::vector<std::string> addresses;
      std::istringstream in(dist_->fetch(kAddressesKey, wait_));
      for (std::string a; std::getline(in, a);) addresses.push_back(a);
      publisher_ = std::make_unique<EpPublisher>(publish_options(addresses), *dist_);
      epoch_ = std::stoll(dist_->fetch(kEpochKey, wait_));
      return;
    }

    fs::create_directories(cfg_.run.out_dir);
    write_text_atomic((fs::path(cfg_.run.out_dir) / "config.yaml").string(), config_.dump() + "\n");
    tokenizer_ = std::make_unique<Tokenizer>(*load_model_tokenizer(cfg_.model.path, cfg_.model.tokenizer, true));
    template_ = ChatTemplate::load(cfg_.chat_template);
    train_ = prepare(load_prompt_dataset(cfg_.data.train), "data.train");
    if (cfg_.data.has_heldout) {
      heldout_ = prepare(load_prompt_dataset(cfg_.data.heldout), "data.heldout");
      if (cfg_.train.eval_limit > 0 && int64_t(heldout_.size()) > cfg_.train.eval_limit)
        heldout_.resize(cfg_.train.eval_limit);
    }

    services_ = std::make_unique<LocalServices>(cfg_);
    rollouts_ =
        std::make_unique<RolloutPool>(services_->rollout_addresses(), cfg_.rollout.timeout_ms, cfg_.rollout.retries);
    if (dist_) {
      std::string addresses;
      for (const auto& a : services_->rollout_addresses()) addresses += a + "\n";
      dist_->post(kAddressesKey, addresses);
      publisher_ = std::make_unique<EpPublisher>(publish_options(services_->rollout_addresses()), *dist_);
    }
    ClientOptions ro;
    ro.timeout_ms = cfg_.reward.timeout_ms;
    ro.retries = cfg_.reward.retries;
    ro.backoff_ms = 200;
    ro.outage_window_ms = int64_t(cfg_.reward.outage_window_s * 1000);
    reward_ = std::make_unique<reward::RewardClient>(services_->reward_address(), ro);
    reward_->health();  // waits for the reward service (the outage window), or fails naming it

    store_ = ExperienceStore::open((fs::path(cfg_.run.out_dir) / "store").string());
    epoch_ = store_->begin_run();
    if (dist_) dist_->post(kEpochKey, std::to_string(epoch_));
    open_metrics();
  }

  // metrics.jsonl continues from the checkpoint: the lines of the steps after it are dropped (the
  // replay logs them again), and an evaluation logged at the checkpoint's step is not redone.
  void open_metrics() {
    const int64_t start = trainer_->steps_done();
    const std::string path = (fs::path(cfg_.run.out_dir) / "metrics.jsonl").string();
    const int64_t dropped = drop_metrics_after(path, start);
    if (fs::exists(path)) {
      const MetricsHistory h = read_metrics(path);
      auto eval = h.series.find("eval/accuracy");
      if (eval != h.series.end() && !eval->second.empty()) {  // the progress line shows it until the next one
        last_eval_ = eval->second.back().second;
        last_eval_step_ = eval->second.back().first;
        if (last_eval_step_ == start) resumed_eval_ = last_eval_;
      }
    }
    const int64_t stored = store_->last_step();
    if (stored >= start && start < cfg_.train.steps)
      std::cerr << "train: steps " << start << ".." << std::min(stored, cfg_.train.steps - 1)
                << " replay the groups already in the store (" << dropped << " metrics lines after step " << start
                << " dropped)" << std::endl;
    metrics_ = std::make_unique<MetricsWriter>(cfg_.run.out_dir);
  }

  std::vector<Prompt> prepare(std::vector<PromptItem> items, const std::string& what) {
    if (items.empty()) throw InputError(config_.where(what) + ": the dataset has no prompts");
    std::vector<Prompt> out;
    out.reserve(items.size());
    for (auto& item : items) out.push_back(prepare_prompt(std::move(item), template_, *tokenizer_));
    return out;
  }

  EpPublishOptions publish_options(const std::vector<std::string>& addresses) const {
    EpPublishOptions o;
    o.rollout = addresses;
    o.fp8 = cfg_.rollout.dtype == "fp8";
    return o;
  }

  // The newest checkpoint that loads (on every rank, expert parallel). Checkpoints of which none
  // loads are an error: starting over would silently retrain the steps the store already holds.
  void resume() {
    const fs::path dir = fs::path(cfg_.run.out_dir) / "checkpoints";
    const auto checkpoints = list_checkpoints(dir);
    std::string newest_error;
    for (const auto& [step, path] : checkpoints) {
      std::string mine;  // this rank's error
      try {
        trainer_->load_checkpoint(path.string());
      } catch (const std::exception& e) {
        mine = e.what();
      }
      double failed = mine.empty() ? 0 : 1;
      if (dist_) {  // the ranks that failed, everywhere
        at::Tensor f = at::tensor({failed}, at::kDouble);
        dist_->all_reduce_sum(f);
        failed = f.item<double>();
      }
      if (failed == 0) {
        if (lead())
          std::cerr << "train: resuming from step " << trainer_->steps_done() << " (" << path.string() << ")"
                    << std::endl;
        return;
      }
      const std::string why = mine.empty() ? "another rank could not load its part" : mine;
      if (newest_error.empty()) newest_error = why;
      if (lead() || !mine.empty())
        std::cerr << "train: skipping checkpoint " << path.string() << ": " << why << std::endl;
    }
    if (checkpoints.empty() && lead()) std::cerr << "train: starting at step 0 (no checkpoint yet)" << std::endl;
    if (!checkpoints.empty())
      throw InputError("train: none of the " + std::to_string(checkpoints.size()) + " checkpoints in " + dir.string() +
                       " loads (the newest: " + newest_error +
                       "); fix what differs (e.g. the config, or the number of ranks it was saved by) or move "
                       "them away to start over");
  }

  // ---- generation thread -------------------------------------------------------------

  void produce(int64_t start) {
    try {
      for (int64_t step = start; step < cfg_.train.steps; ++step) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          // Rollouts for `step` may use weights from step - max_staleness on: wait until those
          // are published, and keep at most max_staleness + 1 steps queued.
          cv_.wait(lock, [&] { return stop_ || (published_ >= step - cfg_.train.max_staleness); });
          if (stop_) return;
        }
        StepGroups batch = collect(step);
        std::lock_guard<std::mutex> lock(mu_);
        ready_.push_back(std::move(batch));
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      failure_ = std::current_exception();
      cv_.notify_all();
    }
  }

  // The step's groups once the generation thread has them; nullopt when a stop signal comes first.
  std::optional<StepGroups> take(int64_t step) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return failure_ || !ready_.empty(); }))
      if (stop_requested()) return std::nullopt;
    if (!ready_.empty()) {
      StepGroups b = std::move(ready_.front());
      ready_.pop_front();
      if (b.step != step) throw std::logic_error("train: step order broken");
      return b;
    }
    std::rethrow_exception(failure_);
  }

  void stop_producer() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

  // The step's groups: the ones already stored (resume), then newly generated ones, in the
  // step's prompt order; with dynamic sampling, refill rounds until prompts_per_step groups
  // have reward variance (or the rounds are spent).
  StepGroups collect(int64_t step) {
    StepGroups out;
    out.step = step;
    std::map<std::string, ScoredGroup> stored;
    store_->scan(step, step, [&](const GroupKey&, const ScoredGroup& g) {
      stored.emplace(g.prompt_id, g);
      return true;
    });
    const std::vector<size_t> order = step_prompt_order(train_.size(), cfg_.run.seed, step);
    size_t next = 0;
    int64_t useful = 0;
    for (int round = 0; round <= (cfg_.train.dynamic_sampling ? cfg_.train.max_refill_rounds : 0); ++round) {
      const int64_t need = cfg_.train.prompts_per_step - (cfg_.train.dynamic_sampling ? useful : 0);
      if (need <= 0 || next >= order.size()) break;
      std::vector<const Prompt*> todo;
      for (int64_t k = 0; k < need && next < order.size(); ++k) {
        const Prompt& p = train_[order[next++]];
        auto it = stored.find(p.item.id);
        if (it != stored.end()) {
          if (replays_rollout_routes())  // e.g. a store written before routing_replay was turned on
            require_routes(it->second, config_.where("trainer.routing_replay") + " is rollout");
          useful += has_reward_variance(it->second);
          out.groups.push_back(std::move(it->second));
          stored.erase(it);
          ++out.reused;
        } else {
          todo.push_back(&p);
        }
      }
      if (todo.empty()) continue;
      std::vector<ScoredGroup> fresh = generate_and_score(todo, step, out);
      const auto t0 = Clock::now();
      store_->put_batch(fresh);  // durable before anything trains on it
      kill_point("train/stored");
      out.store_s += seconds_since(t0);
      for (auto& g : fresh) {
        useful += has_reward_variance(g);
        out.groups.push_back(std::move(g));
      }
      if (!cfg_.train.dynamic_sampling) break;
    }
    return out;
  }

  std::vector<ScoredGroup> generate_and_score(const std::vector<const Prompt*>& todo, int64_t step, StepGroups& acc) {
    std::vector<uint64_t> seeds;
    seeds.reserve(todo.size());
    for (const Prompt* p : todo) seeds.push_back(group_seed(cfg_.run.seed, step, p->item.id));
    return sample_and_score(cfg_, *rollouts_, *reward_, todo, seeds, step,
                            weight_version(epoch_, std::max<int64_t>(0, step - cfg_.train.max_staleness)),
                            replays_rollout_routes() || cfg_.rollout.record_routes, acc.sampling);
  }

  // R3: the trainer replays the rollouts' routes, so every group must carry them.
  bool replays_rollout_routes() const { return trainer_options_.routing_replay == RoutingReplay::kRollout; }

  // ---- learner side ------------------------------------------------------------------

  // Trains on the step's groups (warning when there is none to train on); returns the step's metrics.
  std::map<std::string, double> train_step(StepGroups& batch) {
    const int64_t step = batch.step;
    std::map<std::string, double> m = group_metrics(batch.groups);
    std::vector<ScoredGroup> used;
    for (auto& g : batch.groups) {
      if (cfg_.train.dynamic_sampling && !has_reward_variance(g)) continue;
      if (int64_t(used.size()) == cfg_.train.prompts_per_step) break;
      used.push_back(g);
    }
    int64_t oldest = step;  // the oldest weights (in steps) a completion was sampled from
    for (const auto& g : batch.groups)
      for (const auto& c : g.completions) oldest = std::min(oldest, version_step(c.weight_version));

    if (dist_) {                                        // the other ranks train on the same groups
      if (step > 0) dist_->erase(ready_key(step - 1));  // every rank has trained on that step
      dist_->post(ready_key(step), "");
      std::string bytes = encode_scored_groups(used);
      dist_->broadcast(bytes);
    }
    auto t0 = Clock::now();
    if (!used.empty()) {
      const TrainStats stats = trainer_->step(used);
      for (const auto& [k, v] : stats.as_map()) m["train/" + k] = v;
      for (const auto& [k, v] : stats.mismatch) m["mismatch/" + k] = v;
    } else {
      trainer_->skip_step();  // nothing to learn from: the step counts, the weights stay
      say("train: step " + std::to_string(step + 1) + " trained 0 groups: " + no_group_reason(batch.groups));
    }
    const double train_s = seconds_since(t0);
    kill_point("train/trained");
    const std::map<std::string, double> sync = publish(step + 1);
    kill_point("train/published");

    m["groups/trained"] = double(used.size());
    m["groups/generated"] = double(batch.groups.size());
    m["groups/reused_from_store"] = double(batch.reused);
    m["rollout/staleness"] = double(step - oldest);
    m["rollout/workers"] = double(rollouts_->live_workers());
    m["reward/errors"] = double(batch.sampling.reward_errors);
    m["time/generate"] = batch.sampling.generate_s;
    m["time/score"] = batch.sampling.score_s;
    m["time/store"] = batch.store_s;
    m["time/train"] = train_s;
    m.insert(sync.begin(), sync.end());
    if (batch.sampling.generate_s > 0)
      m["throughput/generate_tokens_per_s"] = double(batch.sampling.generated_tokens) / batch.sampling.generate_s;
    metrics_->log(step + 1, m);
    kill_point("train/logged");
    if (http_) show(step + 1, m, batch.groups);
    return m;
  }

  // The live view (--http): the step's metrics and its groups, the last ones kept for /samples.
  void show(int64_t step, const std::map<std::string, double>& m, const std::vector<ScoredGroup>& groups) {
    http_->log_step(step, m);
    for (const auto& g : groups) http_->samples().add(sample_group(g));
  }

  // The weights after `step` updates to every rollout worker, as this start's version of them
  // (train/weight_version.h); expert parallel, each rank its part. Returns time/sync, sync/bytes,
  // sync/gb_per_s (and per-rank figures, ep_publisher.h).
  std::map<std::string, double> publish(int64_t step) {
    const int64_t version = weight_version(epoch_, step);
    std::map<std::string, double> m;
    if (publisher_) {
      m = publisher_->publish(version, *trainer_->policy()).metrics();
    } else {
      const PublishStats s = rollouts_->publish(version, trainer_->policy()->state_dict(), cfg_.rollout.dtype == "fp8");
      m = {{"time/sync", s.seconds},
           {"sync/bytes", double(s.bytes)},
           {"sync/gb_per_s", s.seconds > 0 ? double(s.bytes) / s.seconds / 1e9 : 0}};
    }
    if (!lead()) return m;
    std::lock_guard<std::mutex> lock(mu_);
    published_ = step;
    cv_.notify_all();
    return m;
  }

  // Held-out accuracy at the current weights (train/heldout_eval.h), logged at `step`.
  double evaluate(int64_t step) {
    const auto t0 = Clock::now();
    const EvalSummary s = evaluate_heldout(cfg_, *rollouts_, *reward_, heldout_, weight_version(epoch_, step));
    last_eval_ = s.pass1;
    last_eval_step_ = step;
    const std::map<std::string, double> m = {{"eval/accuracy", s.pass1},
                                             {"eval/reward", s.mean_reward},
                                             {"eval/format_rate", s.format_rate},
                                             {"eval/response_length", s.mean_tokens},
                                             {"time/eval", seconds_since(t0)}};
    metrics_->log(step, m);
    if (http_) http_->log_step(step, m);
    std::ostringstream line;
    line << "eval  step " << step << ": held-out accuracy " << std::fixed << std::setprecision(3) << last_eval_
         << " over " << heldout_.size() << " prompts x " << cfg_.train.eval_samples << ", mean length "
         << std::setprecision(1) << s.mean_tokens << " tokens";
    say(line.str());
    return last_eval_;
  }

  // Saves the trainer after `step` steps; then the store records that the groups of those steps
  // were trained on (a resumed run starts from this checkpoint and replays the later ones).
  void checkpoint(int64_t step) {
    const fs::path dir = fs::path(cfg_.run.out_dir) / "checkpoints";
    fs::create_directories(dir);
    // Rank 0 adds the run's tokenizer files: the checkpoint loads on its own (eval, generate, HF).
    trainer_->save_checkpoint((dir / checkpoint_name(step)).string(),
                              lead() ? tokenizer_checkpoint_files(*tokenizer_) : std::map<std::string, std::string>());
    if (!lead()) return;
    kill_point("train/checkpointed");
    if (step - 1 > store_->last_trained_step()) store_->mark_trained(step - 1);
    prune_checkpoints(dir, cfg_.run.keep_checkpoints);
  }

  const Config& config_;
  RunConfig cfg_;
  bool progress_;
  Distributed* dist_;                       // expert-parallel group (null: one process)
  std::chrono::milliseconds wait_;          // how long other ranks wait for rank 0's messages
  std::unique_ptr<EpPublisher> publisher_;  // expert parallel: this rank's part of every publish
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate template_;
  std::vector<Prompt> train_, heldout_;
  TrainerOptions trainer_options_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<LocalServices> services_;
  std::unique_ptr<RolloutPool> rollouts_;
  std::unique_ptr<reward::RewardClient> reward_;
  std::unique_ptr<ExperienceStore> store_;
  std::unique_ptr<MetricsWriter> metrics_;
  const StopSignals* signals_;     // stops the run between steps (null: none)
  std::optional<Progress> bar_;    // rank 0, once the steps run
  std::unique_ptr<Monitor> http_;  // the live view (--http); null when off
  double last_eval_ = -1;
  int64_t last_eval_step_ = -1;  // the step last_eval_ was measured at (-1: none yet)
  double resumed_eval_ = -1;     // the held-out accuracy metrics.jsonl has at the resumed step (-1: none)
  int64_t epoch_ = 0;            // this start's run epoch (ExperienceStore::begin_run)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StepGroups> ready_;
  int64_t published_ = -1;  // steps done by the newest weights the workers have
  bool stop_ = false;
  std::exception_ptr failure_;
};

}  // namespace

TrainSummary run_training(const Config& config, bool progress, const LearnerRanks& ranks, const StopSignals* stop) {
  return Loop(config, progress, ranks, stop).run();
}

}  // namespace grpo
