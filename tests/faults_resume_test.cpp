// Runs that survive faults (issue: "runs must resume from any kill point"): `grpo train` killed at
// every kind of point and started again ends equal to an uninterrupted run; a reward service that
// goes away for a few seconds is waited for; a resumed learner brings rollout workers that are
// ahead of it back to its weights; a restarted rollout worker rejoins the pool.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/error.h"
#include "learner_run_testutil.h"
#include "metrics/metrics.h"
#include "model/checkpoint.h"
#include "rollout/engine.h"
#include "rollout/service/server.h"
#include "store/experience_store.h"
#include "subprocess.h"
#include "train/controller.h"
#include "train/rollout_pool.h"
#include "train/weight_version.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

// The run config's sections a test may replace (the members of a YAML flow map).
struct Sections {
  std::string reward = "config: " GRPO_SOURCE_DIR "/configs/reward.yaml, verifier: shaped";
  std::string rollout = "workers: 1";
  std::string train = "prompts_per_step: 3, eval_every: 3, checkpoint_every: 4";
};

// A directory with the tiny run's inputs (learner_run_testutil.h) and run configs.
struct RunDir {
  fs::path root;
  explicit RunDir(const std::string& name) {
    root = fs::temp_directory_path() / ("grpo_faults_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    testing::write_tiny_run_inputs(root);
  }
  ~RunDir() { fs::remove_all(root); }

  // A `grpo train` config of `steps` steps writing to ROOT/out; returns its path.
  std::string write_config(const std::string& out, int steps, const Sections& s = {}) const {
    const fs::path p = root / (out + ".yaml");
    std::ofstream(p) << "run: {name: f, out_dir: " << (root / out).string() << ", seed: 3, threads: 1}\n"
                     << "model: {path: " << (root / "model").string() << "}\n"
                     << "template: " << GRPO_SOURCE_DIR << "/configs/chat_templates/chatml-think.yaml\n"
                     << "data:\n  train: {path: " << (root / "train.jsonl").string() << "}\n"
                     << "  heldout: {path: " << (root / "train.jsonl").string() << ", limit: 3}\n"
                     << "reward: {" << s.reward << "}\n"
                     << "rollout: {" << s.rollout
                     << ", group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 10}}\n"
                     << "trainer: {lr: 0.001, micro_batch_size: 4, mini_batches: 2, threads: 1, entropy_coef: 0.01}\n"
                     << "train: {steps: " << steps << ", " << s.train << "}\n";
    return p.string();
  }
};

struct Outcome {
  int status = 0;
  std::string output;
};

// `grpo train CONFIG --quiet`, with GRPO_KILL_POINT=kill_point when it is not empty.
Outcome train(const std::string& config, const std::string& kill_point = "") {
  std::vector<std::string> argv{"env"};
  if (!kill_point.empty()) argv.push_back("GRPO_KILL_POINT=" + kill_point);
  for (const std::string a : {GRPO_BINARY, "train", config.c_str(), "--quiet"}) argv.push_back(a);
  testing::Subprocess p(argv, "/dev/null", /*merge_stderr=*/true);
  Outcome o;
  o.output = p.read_all();
  o.status = p.wait(60'000);
  return o;
}

at::Tensor flat_weights(const fs::path& checkpoint) {
  std::vector<at::Tensor> flat;
  for (const auto& [name, t] : load_checkpoint_raw(checkpoint.string())) flat.push_back(t.data.flatten());
  return at::cat(flat);
}

// metrics.jsonl's lines: step -> the keys of its lines (a key twice at one step fails the test),
// without the ones that differ between two runs of the same steps (times, rates, the replay count).
std::map<int64_t, std::map<std::string, nlohmann::json>> metric_lines(const fs::path& run) {
  std::map<int64_t, std::map<std::string, nlohmann::json>> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    auto& keys = out[j.at("step").get<int64_t>()];
    for (const auto& [k, v] : j.items()) {
      if (k == "step" || k == "time" || k.rfind("time/", 0) == 0 || k.rfind("throughput/", 0) == 0 ||
          k == "sync/gb_per_s" || k == "train/seconds" || k == "groups/reused_from_store")
        continue;
      EXPECT_EQ(keys.count(k), 0u) << "step " << j["step"] << " logs '" << k << "' twice";
      keys[k] = v;
    }
  }
  return out;
}

std::map<int64_t, std::multiset<std::string>> prompts_per_step(const fs::path& run) {
  auto store = ExperienceStore::open((run / "store").string(), {.create_if_missing = false, .read_only = true});
  std::map<int64_t, std::multiset<std::string>> out;
  store->scan(0, 1 << 30, [&](const GroupKey& k, const ScoredGroup& g) {
    out[k.step].insert(g.prompt_id);
    return true;
  });
  return out;
}

// kill -9 at every kind of point of the loop, each start resuming the last: between checkpoints
// (after an update and its metrics line), while replaying (after an update, before its publish;
// after the publish, before its metrics line), during a checkpoint write (staged, not yet renamed;
// and with only the weights written), after a step's groups reached the store but before they were
// trained on, and after a checkpoint but before the store marked its steps trained. Then the same
// command once more finishes the run. Everything equals the uninterrupted run: the final weights
// bit for bit, every metric of every step (one line per step and key), the groups stored per step
// (none generated twice), the trained mark.
TEST(Resume, FromEveryKillPointEqualsAnUninterruptedRun) {
  RunDir d("kills");
  const int steps = 10;  // checkpoints after 4, 8 and 10
  // No held-out evaluation: it shares the rollout worker with the next step's generation, whose
  // log-probs then depend on timing (batch composition) in the last bits.
  Sections sections;
  sections.train = "prompts_per_step: 3, eval_every: 0, checkpoint_every: 4";
  const std::string ref = d.write_config("ref", steps, sections), cut = d.write_config("cut", steps, sections);
  Outcome o = train(ref);
  ASSERT_EQ(o.status, 0) << o.output;

  // Each start resumes where the last was killed: the kill points' counters start again each time.
  const std::vector<std::pair<std::string, std::string>> kills = {
      {"train/logged@6", "between checkpoints: 6 steps done, the checkpoint holds 4"},
      {"train/trained@2", "replaying: step 5 trained on the stored groups, not yet published"},
      {"train/published@1", "replaying: step 4 trained and published, its metrics not logged"},
      {"checkpoint/staged@1", "writing the checkpoint of step 8 (staged, not renamed)"},
      {"train/checkpointed@1", "after step 8's checkpoint, before the store marked it"},
      {"train/stored@1", "step 8's or 9's groups stored, not trained on"},
      {"checkpoint/weights-written@1", "writing the last checkpoint (weights only)"},
  };
  for (const auto& [point, what] : kills) {
    o = train(cut, point);
    ASSERT_EQ(o.status, 128 + SIGKILL) << point << " (" << what << ") was not reached:\n" << o.output;
  }
  o = train(cut);
  ASSERT_EQ(o.status, 0) << o.output;
  EXPECT_THAT(o.output, ::testing::HasSubstr("resuming from"));
  EXPECT_THAT(o.output, ::testing::HasSubstr("replay the groups already in the store"));

  const fs::path a = d.root / "ref", b = d.root / "cut";
  EXPECT_TRUE(
      at::equal(flat_weights(a / "checkpoints" / "step-000010"), flat_weights(b / "checkpoints" / "step-000010")));
  const auto ma = metric_lines(a), mb = metric_lines(b);
  EXPECT_EQ(ma.size(), size_t(steps));
  EXPECT_EQ(ma.size(), mb.size());
  for (const auto& [step, keys] : ma) {
    ASSERT_TRUE(mb.count(step)) << "step " << step;
    EXPECT_EQ(keys.size(), mb.at(step).size()) << "step " << step;
    for (const auto& [k, v] : keys)
      EXPECT_EQ(v, mb.at(step).count(k) ? mb.at(step).at(k) : nullptr) << step << " " << k;
  }
  EXPECT_GT(ma.at(steps).at("train/grad_norm_mean").get<double>(), 0) << "no update changed the weights";
  const auto pa = prompts_per_step(a), pb = prompts_per_step(b);
  EXPECT_EQ(pa.size(), size_t(steps));
  EXPECT_EQ(pa, pb);
  auto store = ExperienceStore::open((b / "store").string(), {.create_if_missing = false, .read_only = true});
  EXPECT_EQ(store->last_trained_step(), steps - 1);
  EXPECT_EQ(store->run_epoch(), int64_t(kills.size()) + 1);
}

// A resumed run keeps the evaluation schedule: killed after step 3 (checkpoint at 2, evaluations
// at 0 and 2 logged), it evaluates at 4 and not again at 2 (the checkpoint's step) or at 3.
TEST(Resume, KeepsTheEvaluationSchedule) {
  RunDir d("evals");
  Sections sections;
  sections.train = "prompts_per_step: 3, eval_every: 2, checkpoint_every: 2";
  const std::string cfg = d.write_config("run", 4, sections);
  Outcome o = train(cfg, "train/logged@3");
  ASSERT_EQ(o.status, 128 + SIGKILL) << o.output;
  o = train(cfg);
  ASSERT_EQ(o.status, 0) << o.output;
  std::vector<int64_t> evaluated;
  for (const auto& [step, keys] : metric_lines(d.root / "run"))  // fails on a key logged twice at a step
    if (keys.count("eval/accuracy")) evaluated.push_back(step);
  EXPECT_EQ(evaluated, (std::vector<int64_t>{0, 2, 4}));
  // The report's reading keeps both lines of a step that trained and evaluated (issue 18 item 2:
  // it kept the last line only, losing the training points of steps 2 and 4, the run's last).
  const MetricsHistory h = read_metrics((d.root / "run" / "metrics.jsonl").string());
  auto steps_of = [&](const std::string& key) {
    std::vector<int64_t> steps;
    for (const auto& [step, value] : h.series.at(key)) steps.push_back(step);
    return steps;
  };
  EXPECT_EQ(steps_of("reward/mean"), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(steps_of("eval/accuracy"), (std::vector<int64_t>{0, 2, 4}));
}

// An in-process rollout worker on a fixed port, which a test can stop and start again.
struct Worker {
  std::shared_ptr<const CausalLM> model;
  std::unique_ptr<rollout::RolloutServer> server;
  std::string address;

  explicit Worker(const fs::path& model_dir) : model(load_causal_lm(model_dir.string())) { start("127.0.0.1:0"); }
  void start(const std::string& at) {
    rollout::ServerOptions so;
    so.address = at;
    server = std::make_unique<rollout::RolloutServer>(std::make_shared<rollout::Engine>(model, 0), so);
    server->start();
    address = server->address();
  }
  void stop() { server.reset(); }
  void restart() { start(address); }
  int64_t version() const { return server->status().weight_version(); }
  // Whether the served version becomes `v` within 20 s (an accepted version is swapped in at the
  // engine's next step).
  bool serves(int64_t v) const {
    for (int i = 0; i < 2000 && version() != v; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return version() == v;
  }
};

// A worker that failed is out of the pool; once it answers again (restarted, on its first
// version), the next publish sends it the weights and it generates again.
TEST(RolloutPool, ARestartedWorkerRejoinsAtTheNextPublish) {
  RunDir d("rejoin");
  Worker w0(d.root / "model"), w1(d.root / "model");
  RolloutPool pool({w0.address, w1.address}, 30'000, 2);
  const auto state = w0.model->state_dict();
  pool.publish(weight_version(1, 1), state, false);
  EXPECT_TRUE(w1.serves(weight_version(1, 1)));

  std::vector<rollout::GeneratePrompt> prompts(4);
  for (size_t i = 0; i < prompts.size(); ++i) prompts[i] = {{1, 2, int64_t(3 + i)}, 2, i};
  rollout::GenerationParams params;
  params.max_new_tokens = 4;
  w1.stop();
  EXPECT_EQ(pool.generate(prompts, params, weight_version(1, 1)).size(), 4u);  // w1's prompts went to w0
  EXPECT_EQ(pool.live_workers(), 1u);
  pool.publish(weight_version(1, 2), state, false);  // w1 does not answer: still out
  EXPECT_EQ(pool.live_workers(), 1u);

  w1.restart();
  EXPECT_EQ(w1.version(), 0);
  const PublishStats s = pool.publish(weight_version(1, 3), state, false);
  EXPECT_EQ(s.workers, 2);
  EXPECT_EQ(pool.live_workers(), 2u);
  EXPECT_TRUE(w1.serves(weight_version(1, 3)));
  const auto out = pool.generate(prompts, params, weight_version(1, 3));
  for (const auto& group : out)
    for (const auto& c : group) EXPECT_EQ(c.weight_version, weight_version(1, 3));
  EXPECT_GT(w1.server->status().completions(), 0) << "the rejoined worker took no prompt";
}

// Two external rollout workers keep running while the learner is killed between checkpoints and
// started again: they hold newer weights (version of step 3) than the checkpoint it resumes from
// (step 2). The new start's versions carry a higher run epoch, so the workers take its weights and
// every step's groups come from the weights of that step.
TEST(Resume, WorkersAheadOfTheResumedCheckpointComeBack) {
  RunDir d("ahead");
  std::vector<std::unique_ptr<testing::Subprocess>> servers;
  std::vector<std::string> addresses;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(std::make_unique<testing::Subprocess>(
        std::vector<std::string>{GRPO_BINARY, "rollout-server", "--model", (d.root / "model").string(), "--address",
                                 "127.0.0.1:0", "--threads", "1"}));
    addresses.push_back(testing::listening_address(*servers.back()));
  }
  Sections sections;
  sections.rollout = "addresses: [" + addresses[0] + ", " + addresses[1] + "]";
  sections.train = "prompts_per_step: 4, eval_every: 0, checkpoint_every: 2";
  const std::string cfg = d.write_config("run", 3, sections);
  Outcome o = train(cfg, "train/logged@3");  // 3 steps done and published; the checkpoint holds 2
  ASSERT_EQ(o.status, 128 + SIGKILL) << o.output;
  o = train(cfg);
  ASSERT_EQ(o.status, 0) << o.output;
  EXPECT_THAT(o.output, ::testing::HasSubstr("resuming from"));
  auto store =
      ExperienceStore::open((d.root / "run" / "store").string(), {.create_if_missing = false, .read_only = true});
  store->scan(0, 10, [&](const GroupKey& k, const ScoredGroup& g) {
    for (const auto& c : g.completions) EXPECT_EQ(version_step(c.weight_version), k.step) << k.describe();
    return true;
  });
  EXPECT_EQ(store->last_trained_step(), 2);
  rollout::RolloutClient client(addresses[1]);
  for (int i = 0; i < 2000 && client.status().weight_version() != weight_version(2, 3); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // swapped in at the engine's next step
  EXPECT_EQ(client.status().weight_version(), weight_version(2, 3));
}

// The reward service goes away (SIGKILL) in the middle of a run and comes back on the same address
// 3 s later: the trainer waits for it (reward.outage_window_s) and finishes; with a shorter window
// than the outage it fails, naming the window.
TEST(RewardOutage, IsWaitedForWithinTheWindow) {
  RunDir d("outage");
  std::string address = "127.0.0.1:0";
  const std::string reward_config = std::string(GRPO_SOURCE_DIR) + "/configs/reward.yaml";
  std::unique_ptr<testing::Subprocess> server;
  auto start_reward = [&] {
    server = std::make_unique<testing::Subprocess>(
        std::vector<std::string>{GRPO_BINARY, "reward-server", "--config", reward_config, "server.address=" + address},
        "/dev/null", true);
    address = testing::listening_address(*server, 30'000);
  };
  start_reward();
  Sections sections;
  sections.reward = "address: " + address + ", verifier: r1, retries: 1, timeout_ms: 2000";
  const std::string cfg = d.write_config("run", 6, sections);
  std::thread outage([&] {
    while (!fs::exists(d.root / "run" / "checkpoints" / "step-000004"))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    server->signal(SIGKILL);
    server->wait();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    start_reward();
  });
  Outcome o = train(cfg);
  outage.join();
  ASSERT_EQ(o.status, 0) << o.output;
  EXPECT_THAT(o.output, ::testing::HasSubstr("retrying for up to 120.0 s"));
  EXPECT_THAT(o.output, ::testing::HasSubstr("answering again after"));
  EXPECT_EQ(prompts_per_step(d.root / "run").size(), 6u);

  server->signal(SIGKILL);
  server->wait();
  sections.reward = "address: " + address + ", retries: 1, timeout_ms: 500, outage_window_s: 2";
  const std::string short_window = d.write_config("short", 2, sections);
  const auto t0 = std::chrono::steady_clock::now();
  o = train(short_window);
  EXPECT_NE(o.status, 0);
  EXPECT_THAT(o.output, ::testing::HasSubstr("over the outage window of 2.0 s"));
  EXPECT_THAT(o.output, ::testing::HasSubstr(address));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

}  // namespace
}  // namespace grpo
