// The R1-Zero loop end to end on a tiny random DeepSeek-V3 model: real reward and rollout servers
// on loopback, a real RocksDB store, real checkpoints; resume after kill -9 of the `grpo train`
// process; a rollout worker killed mid-run; config errors; the same loop on a dense student.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.h"
#include "learner_run_testutil.h"
#include "metrics/metrics.h"
#include "model/dense_decoder.h"
#include "model/init.h"
#include "model/json_keys.h"
#include "model/pretrained.h"
#include "model/safetensors.h"
#include "model_test_util.h"
#include "store/experience_store.h"
#include "subprocess.h"
#include "train/controller.h"
#include "train/group_metrics.h"
#include "train/prompt_schedule.h"
#include "train/run_config.h"
#include "train/weight_version.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

// A run directory with a tiny random model (bpe-tokenizer vocabulary), 12 prompts and a config.
struct Fixture {
  fs::path root;
  explicit Fixture(const std::string& name) {
    root = fs::temp_directory_path() / ("grpo_ctl_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    testing::write_tiny_run_inputs(root);
  }
  ~Fixture() { fs::remove_all(root); }

  // The config text; `train` holds the train section's keys besides steps.
  std::string config(int steps, const std::string& out = "run",
                     const std::string& train = "prompts_per_step: 3, eval_every: 2, checkpoint_every: 1") const {
    return "run: {name: t, out_dir: " + (root / out).string() +
           ", seed: 3, threads: 1}\n"
           "model: {path: " +
           (root / "model").string() +
           "}\n"
           "template: " +
           std::string(GRPO_SOURCE_DIR) +
           "/configs/chat_templates/chatml-think.yaml\n"
           "data:\n  train: {path: " +
           (root / "train.jsonl").string() +
           "}\n"
           "  heldout: {path: " +
           (root / "train.jsonl").string() +
           ", limit: 4}\n"
           "reward: {config: " +
           std::string(GRPO_SOURCE_DIR) +
           "/configs/reward.yaml, verifier: shaped}\n"
           "rollout: {workers: 1, group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 12}}\n"
           "train: {steps: " +
           std::to_string(steps) + ", " + train +
           "}\n"
           "trainer: {lr: 0.001, micro_batch_size: 4, mini_batches: 2, threads: 1}\n";
  }
  Config load(int steps, const std::vector<std::string>& overrides = {}, const std::string& out = "run") const {
    Config c = Config::parse(config(steps, out), (root / "run.yaml").string());
    for (const auto& o : overrides) c.apply_override(o);
    return c;
  }
};

std::map<int64_t, int64_t> groups_per_step(const std::string& store_dir) {
  auto store = ExperienceStore::open(store_dir, {.create_if_missing = false, .read_only = true});
  std::map<int64_t, int64_t> n;
  store->scan(0, 1 << 30, [&](const GroupKey& k, const ScoredGroup&) {
    ++n[k.step];
    return true;
  });
  return n;
}

TEST(PromptSchedule, DeterministicPermutationPerStep) {
  auto a = step_prompt_order(10, 7, 3), b = step_prompt_order(10, 7, 3), c = step_prompt_order(10, 7, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::sort(a.begin(), a.end());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], i);
  EXPECT_EQ(group_seed(1, 2, "x"), group_seed(1, 2, "x"));
  EXPECT_NE(group_seed(1, 2, "x"), group_seed(1, 3, "x"));
  EXPECT_NE(group_seed(1, 2, "x"), group_seed(1, 2, "y"));
}

TEST(GroupMetrics, HandComputed) {
  ScoredGroup g1, g2;
  for (double r : {1.0, 0.0}) {
    Completion c;
    c.reward = r;
    c.correct = r > 0;
    c.token_ids = std::vector<int32_t>(r > 0 ? 4 : 2, 5);
    c.reward_components["accuracy"] = r;
    g1.completions.push_back(c);
  }
  for (int i = 0; i < 2; ++i) {
    Completion c;
    c.reward = 1.0;
    c.correct = true;
    c.token_ids = std::vector<int32_t>(6, 5);
    c.finish_reason = FinishReason::kLength;
    g2.completions.push_back(c);
  }
  auto m = group_metrics({g1, g2});
  EXPECT_DOUBLE_EQ(m["reward/mean"], 0.75);
  EXPECT_NEAR(m["reward/std"], 0.5, 1e-12);  // unbiased std of {1,0,1,1}
  EXPECT_DOUBLE_EQ(m["accuracy"], 0.75);
  EXPECT_DOUBLE_EQ(m["response_length/mean"], 4.5);
  EXPECT_DOUBLE_EQ(m["response_length/max"], 6);
  EXPECT_DOUBLE_EQ(m["response_clipped_fraction"], 0.5);
  EXPECT_DOUBLE_EQ(m["groups/mixed_fraction"], 0.5);
  EXPECT_DOUBLE_EQ(m["groups/solved_fraction"], 0.5);
  EXPECT_DOUBLE_EQ(m["reward/accuracy/mean"], 0.5);
  EXPECT_TRUE(has_reward_variance(g1));
  EXPECT_FALSE(has_reward_variance(g2));
}

TEST(RunConfig, ErrorsNameTheKey) {
  Fixture f("cfg");
  auto expect_error = [&](const std::vector<std::string>& overrides, const std::string& needle) {
    try {
      run_config_from(f.load(1, overrides));
      ADD_FAILURE() << "no error for " << overrides[0];
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({"train.stepz=3"}, "train.stepz");
  expect_error({"train.steps=0"}, "train.steps");
  expect_error({"rollout.dtype=fp16"}, "rollout.dtype");
  expect_error({"rollout.group_size=many"}, "rollout.group_size");
  expect_error({"bogus.key=1"}, "bogus");
  expect_error({"rollout.sampling.top_p=2"}, "rollout.sampling.top_p");
  expect_error({"rollout.sampling.temperature=-1"}, "rollout.sampling.temperature");
  expect_error({"rollout.engine.max_seqs=0"}, "rollout.engine.max_seqs");
  expect_error({"rollout.engine.max_contxt=5"}, "max_contxt");
  EXPECT_NO_THROW(run_config_from(f.load(1)));
  // The sections keep the run config's own defaults where the config says nothing.
  const RunConfig rc = run_config_from(f.load(1, {"rollout.engine.max_context=64"}));
  EXPECT_EQ(rc.rollout.engine.max_context, 64);
  EXPECT_EQ(rc.rollout.engine.max_new_tokens_limit, rollout::EngineOptions().max_new_tokens_limit);
}

// Issue 19 end to end: the rollout worker (fp32, the trainer's weights) and the trainer agree on
// every log-prob bit for bit, and with routing_replay: rollout the loop asks the worker for its
// routes, stores them with every group and the trainer's routers agree with them.
TEST(Controller, RolloutAndTrainerAgreeExactlyAndRoutesAreStoredForReplay) {
  Fixture f("exact");
  run_training(f.load(2, {"trainer.routing_replay=rollout"}), /*progress=*/false);
  const fs::path run = f.root / "run";
  MetricsHistory h = read_metrics((run / "metrics.jsonl").string());
  ASSERT_EQ(h.series["mismatch/logp_abs_max"].size(), 2u);
  for (const auto& [step, value] : h.series["mismatch/logp_abs_max"]) EXPECT_EQ(value, 0.0) << "step " << step;
  ASSERT_EQ(h.series["mismatch/expert_disagreement"].size(), 2u);
  for (const auto& [step, value] : h.series["mismatch/expert_disagreement"]) EXPECT_EQ(value, 0.0) << "step " << step;
  auto store = ExperienceStore::open((run / "store").string(), {.create_if_missing = false, .read_only = true});
  int64_t groups = 0;
  store->scan(0, 1, [&](const GroupKey&, const ScoredGroup& g) {
    ++groups;
    for (const auto& c : g.completions)
      EXPECT_EQ(c.routes.tokens, static_cast<int64_t>(g.prompt_token_ids.size() + c.token_ids.size()) - 1);
    return true;
  });
  EXPECT_EQ(groups, 6);
}

// rollout.record_routes without replay: the rollouts' routes are stored and the trainer measures
// its routers against them (the expert-disagreement metric of a run that does not replay).
TEST(Controller, RecordedRoutesWithoutReplayAreStoredAndMeasured) {
  Fixture f("record");
  run_training(f.load(1, {"rollout.record_routes=true"}), false);
  const fs::path run = f.root / "run";
  MetricsHistory h = read_metrics((run / "metrics.jsonl").string());
  ASSERT_EQ(h.series["mismatch/expert_disagreement"].size(), 1u);
  EXPECT_EQ(h.series["mismatch/expert_disagreement"][0].second, 0.0);  // fp32 on both sides, same weights
  EXPECT_TRUE(h.series.count("mismatch/expert_disagreement/moe_layer0"));
  auto store = ExperienceStore::open((run / "store").string(), {.create_if_missing = false, .read_only = true});
  int64_t completions = 0;
  store->scan(0, 0, [&](const GroupKey&, const ScoredGroup& g) {
    for (const auto& c : g.completions) {
      ++completions;
      EXPECT_EQ(c.routes.tokens, static_cast<int64_t>(g.prompt_token_ids.size() + c.token_ids.size()) - 1);
    }
    return true;
  });
  EXPECT_EQ(completions, 12);
}

// A store written without routes, taken up with routing_replay: rollout, is an error before the
// trainer sees its groups: run "a" stores step 0's groups without routes; run "b" starts from a
// copy of that store (a run that crashed after storing step 0) with replay on.
TEST(Controller, ReplayOfAStoreWithoutRoutesIsAnErrorBeforeTraining) {
  Fixture f("noroutes");
  run_training(f.load(1, {}, "a"), false);
  fs::create_directories(f.root / "b");
  fs::copy(f.root / "a" / "store", f.root / "b" / "store", fs::copy_options::recursive);
  try {
    run_training(f.load(1, {"trainer.routing_replay=rollout"}, "b"), false);
    ADD_FAILURE() << "trained on groups without routes";
  } catch (const InputError& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("trainer.routing_replay"));
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("routes"));
  }
  EXPECT_FALSE(fs::exists(f.root / "b" / "checkpoints" / "step-000001"));
}

TEST(Controller, RunsStoresEveryGroupLogsAndResumes) {
  Fixture f("run");
  TrainSummary s = run_training(f.load(2), /*progress=*/false);
  EXPECT_EQ(s.start_step, 0);
  EXPECT_EQ(s.steps_done, 2);
  const fs::path run = f.root / "run";
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-000001" / "config.json"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-000002" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(run / "report.html"));
  EXPECT_TRUE(fs::exists(run / "config.yaml"));
  EXPECT_EQ(groups_per_step((run / "store").string()), (std::map<int64_t, int64_t>{{0, 3}, {1, 3}}));
  {
    auto store = ExperienceStore::open((run / "store").string(), {.create_if_missing = false, .read_only = true});
    EXPECT_EQ(store->last_trained_step(), 1);
    store->scan(0, 1, [&](const GroupKey& k, const ScoredGroup& g) {
      EXPECT_EQ(g.completions.size(), 4u);
      for (const auto& c : g.completions) {
        EXPECT_EQ(c.weight_version, weight_version(1, k.step));  // synchronous: step n samples from weights n
        EXPECT_EQ(c.token_ids.size(), c.logprobs.size());
        EXPECT_FALSE(c.reward_components.empty()) << c.reward_reason;
      }
      return true;
    });
  }
  MetricsHistory h = read_metrics((run / "metrics.jsonl").string());
  for (const char* key : {"reward/mean", "accuracy", "response_length/mean", "train/loss", "train/grad_norm_mean",
                          "time/generate", "time/train", "time/sync", "sync/bytes", "eval/accuracy",
                          "mismatch/logp_abs_mean", "mismatch/logp_abs_max", "mismatch/kl_k3"})
    EXPECT_TRUE(h.series.count(key)) << key;
  EXPECT_EQ(h.series["mismatch/kl_k3"].size(), 2u);              // every trained step
  EXPECT_FALSE(h.series.count("mismatch/expert_disagreement"));  // routes are not recorded by default
  EXPECT_EQ(h.series["eval/accuracy"].size(), 2u);               // at the start and after step 2
  EXPECT_GT(h.series["sync/bytes"].back().second, 0);

  // Same config, more steps: continues from the step-2 checkpoint.
  s = run_training(f.load(3), false);
  EXPECT_EQ(s.start_step, 2);
  EXPECT_EQ(s.steps_done, 3);
  EXPECT_EQ(groups_per_step((run / "store").string()).at(2), 3);
}

at::Tensor final_weights(const fs::path& run, const std::string& name) {
  auto raw = load_checkpoint_raw((run / "checkpoints" / name).string());
  std::vector<at::Tensor> flat;
  for (const auto& [n, t] : raw) flat.push_back(t.data.to(at::kDouble).flatten());
  return at::cat(flat);
}

// R1 §4 trains distilled dense students with RL too: the demo's dense student (a Llama, configs/
// tiny-zero/student.json, with the test tokenizer's vocabulary) through the same loop — the paged
// engine generates with its key/value rows, the trainer updates it, new weights reach the rollout
// worker every step, checkpoints are dense HF checkpoints and a run resumes from them.
TEST(Controller, TrainsTheDenseStudent) {
  Fixture f("dense");
  nlohmann::json config = read_config_json(std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/student.json");
  config["vocab_size"] = 3000;
  DenseDecoder student(DenseConfig::from_json(config, "student.json"));
  init_weights(student, 7);
  const fs::path dir = f.root / "student";
  save_pretrained(student, dir.string());
  fs::copy_file(f.root / "model" / "tokenizer.json", dir / "tokenizer.json");

  // A random student earns the same (zero) reward on every sample, so the advantages are 0: the
  // entropy bonus gives the update a gradient.
  const std::vector<std::string> overrides{"model.path=" + dir.string(), "trainer.entropy_coef=0.01"};
  TrainSummary s = run_training(f.load(2, overrides), /*progress=*/false);
  EXPECT_EQ(s.steps_done, 2);
  const fs::path run = f.root / "run";
  EXPECT_EQ(groups_per_step((run / "store").string()), (std::map<int64_t, int64_t>{{0, 3}, {1, 3}}));
  MetricsHistory h = read_metrics((run / "metrics.jsonl").string());
  for (const char* key : {"reward/mean", "train/loss", "train/grad_norm_mean", "sync/bytes", "eval/accuracy"})
    EXPECT_TRUE(h.series.count(key)) << key;
  EXPECT_GT(h.series["sync/bytes"].back().second, 0);

  const std::unique_ptr<CausalLM> trained = load_causal_lm((run / "checkpoints" / "step-000002").string());
  ASSERT_NE(dynamic_cast<DenseDecoder*>(trained.get()), nullptr);
  double moved = 0;
  const auto before = student.state_dict(), after = trained->state_dict();
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [name, t] : before) moved = std::max(moved, (after.at(name) - t).abs().max().item<double>());
  EXPECT_GT(moved, 0) << "the update changed no weight";

  s = run_training(f.load(3, overrides), false);
  EXPECT_EQ(s.start_step, 2);
  EXPECT_EQ(s.steps_done, 3);
}

// SIGKILL of `grpo train` in the middle of a run, then the same command again: the result is
// the uninterrupted run's, no group was generated twice, none lost.
TEST(Controller, KillNineAndResumeMatchesAnUninterruptedRun) {
  Fixture f("kill");
  const int steps = 4;
  auto write_config = [&](const std::string& out) {
    const fs::path p = f.root / (out + ".yaml");
    std::ofstream(p) << f.config(steps, out, "prompts_per_step: 3, eval_every: 0, checkpoint_every: 2");
    return p.string();
  };
  const std::string ref_cfg = write_config("ref"), cut_cfg = write_config("cut");
  {
    testing::Subprocess ref({GRPO_BINARY, "train", ref_cfg, "--quiet"}, "/dev/null", true);
    const std::string out = ref.read_all();
    ASSERT_EQ(ref.wait(), 0) << out;
  }
  {
    // SIGKILL once the third step has trained, before it is published or recorded: a kill point
    // (common/kill_point.h), so the kill lands mid-run however fast the steps are. The main thread
    // reaches it only after writing step 2's checkpoint (train/stored is reached by the rollout
    // thread, which may store step 2's groups while that checkpoint is still being written).
    testing::Subprocess cut({"env", "GRPO_KILL_POINT=train/trained@3", GRPO_BINARY, "train", cut_cfg, "--quiet"},
                            "/dev/null", true);
    const std::string out = cut.read_all();
    ASSERT_EQ(cut.wait(60'000), 128 + SIGKILL) << out;
    ASSERT_TRUE(fs::exists(f.root / "cut" / "checkpoints" / "step-000002")) << out;
  }
  ASSERT_FALSE(fs::exists(f.root / "cut" / "checkpoints" / "step-000004")) << "the run finished before the kill";
  {
    testing::Subprocess again({GRPO_BINARY, "train", cut_cfg, "--quiet"}, "/dev/null", true);
    const std::string out = again.read_all();
    ASSERT_EQ(again.wait(), 0) << out;
    EXPECT_NE(out.find("resuming from"), std::string::npos) << out;
  }
  EXPECT_EQ(groups_per_step((f.root / "cut" / "store").string()),
            (std::map<int64_t, int64_t>{{0, 3}, {1, 3}, {2, 3}, {3, 3}}));
  const at::Tensor a = final_weights(f.root / "ref", "step-000004");
  const at::Tensor b = final_weights(f.root / "cut", "step-000004");
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-6);
}

// Async mode: rollouts for step n may use weights from step n - 1 while step n - 1 trains.
TEST(Controller, AsyncRolloutsStayWithinTheStalenessBound) {
  Fixture f("async");
  TrainSummary s = run_training(f.load(4, {"train.max_staleness=1", "train.eval_every=0"}), false);
  EXPECT_EQ(s.steps_done, 4);
  auto store =
      ExperienceStore::open((f.root / "run" / "store").string(), {.create_if_missing = false, .read_only = true});
  int64_t groups = 0;
  store->scan(0, 10, [&](const GroupKey& k, const ScoredGroup& g) {
    ++groups;
    for (const auto& c : g.completions) {
      EXPECT_GE(version_step(c.weight_version), k.step - 1) << k.describe();
      EXPECT_LE(version_step(c.weight_version), k.step) << k.describe();
    }
    return true;
  });
  EXPECT_EQ(groups, 12);
  MetricsHistory h = read_metrics((f.root / "run" / "metrics.jsonl").string());
  for (const auto& [step, staleness] : h.series["rollout/staleness"]) EXPECT_LE(staleness, 1) << step;
}

// Two external `grpo rollout-server`s; one is killed with SIGKILL during the run. Its prompts go to
// the other and the run completes with every step's groups.
TEST(Controller, ARolloutWorkerDyingMidRunIsReplacedByTheOthers) {
  Fixture f("workers");
  std::vector<std::unique_ptr<testing::Subprocess>> servers;
  std::vector<std::string> addresses;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(std::make_unique<testing::Subprocess>(
        std::vector<std::string>{GRPO_BINARY, "rollout-server", "--model", (f.root / "model").string(), "--address",
                                 "127.0.0.1:0", "--threads", "1"}));
    addresses.push_back(testing::listening_address(*servers.back()));
  }
  std::atomic<bool> done{false};
  std::thread killer([&] {
    // Once step 1's groups are being generated, the second worker dies.
    while (!done && !fs::exists(f.root / "run" / "checkpoints" / "step-000001"))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    servers[1]->signal(SIGKILL);
  });
  TrainSummary s;
  try {
    s = run_training(f.load(4, {"rollout.addresses=[" + addresses[0] + ", " + addresses[1] + "]", "train.eval_every=0",
                                "train.prompts_per_step=4"}),
                     false);
  } catch (...) {
    done = true;
    killer.join();
    throw;
  }
  done = true;
  killer.join();
  EXPECT_EQ(s.steps_done, 4);
  EXPECT_EQ(groups_per_step((f.root / "run" / "store").string()),
            (std::map<int64_t, int64_t>{{0, 4}, {1, 4}, {2, 4}, {3, 4}}));
  MetricsHistory h = read_metrics((f.root / "run" / "metrics.jsonl").string());
  EXPECT_EQ(h.series["rollout/workers"].front().second, 2);
  EXPECT_EQ(h.series["rollout/workers"].back().second, 1);
}

TEST(Controller, UnreachableRewardServiceIsAClearError) {
  Fixture f("noreward");
  try {
    run_training(f.load(1, {"reward.address=127.0.0.1:1", "reward.retries=1", "reward.timeout_ms=300",
                            "reward.outage_window_s=0.5"}),
                 false);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace grpo
