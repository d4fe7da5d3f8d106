// `grpo store dump` and the report's samples section through the binary: a store written here with
// known groups (every field checked), hostile arguments, and a real tiny `grpo train` run whose
// store is read while the run is writing it.
#include <rocksdb/db.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/utf8.h"
#include "grpo_cli.h"
#include "learner_run_testutil.h"
#include "learner_scored_group_testutil.h"
#include "store/experience_store.h"
#include "store/report_samples.h"
#include "subprocess.h"
#include "train/weight_version.h"

namespace fs = std::filesystem;
using grpo::ExperienceStore;
using grpo::ScoredGroup;
using grpo::store_test::make_group;
using grpo_test::run_grpo;
using grpo_test::ScratchDir;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::vector<json> parse_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

// RUN/store with the groups of steps 0..2 (two per step); the completions of step 2 were made by
// the weights of run epoch 2.
struct StoreRun {
  ScratchDir dir{"grpo_store_dump"};
  std::vector<ScoredGroup> groups;
  StoreRun() {
    fs::create_directories(run());
    auto store = ExperienceStore::open(dir.path() + "/run/store");
    for (int64_t step = 0; step < 3; ++step)
      for (int i = 0; i < 2; ++i) {
        ScoredGroup g = make_group(step, int(step * 2 + i));
        for (auto& c : g.completions) c.weight_version = grpo::weight_version(step == 2 ? 2 : 1, step);
        groups.push_back(g);
        store->put(g);
      }
  }
  std::string run() const { return dir.path() + "/run"; }
};

}  // namespace

TEST(StoreDump, JsonlHasEveryGroupWithItsCompletionsRewardsReasonsAndDecodedVersions) {
  StoreRun s;
  for (const std::string& path : {s.run(), s.run() + "/store"}) {  // the run directory or the store
    const auto r = run_grpo("store dump " + path + " --format jsonl", s.dir.path());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("6 group(s)"));
    const std::vector<json> lines = parse_lines(r.out);
    ASSERT_EQ(lines.size(), s.groups.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      const ScoredGroup& g = s.groups[i];
      const json& l = lines[i];
      EXPECT_EQ(l["step"], g.step);
      EXPECT_EQ(l["seq"], i);
      EXPECT_EQ(l["prompt_id"], g.prompt_id);
      EXPECT_EQ(l["prompt"], g.prompt_text);  // with its embedded NUL
      EXPECT_EQ(l["reference"], g.reference_answer);
      EXPECT_EQ(l["run_id"], g.run_id);
      ASSERT_EQ(l["completions"].size(), g.completions.size());
      for (size_t j = 0; j < g.completions.size(); ++j) {
        const json& c = l["completions"][j];
        const grpo::Completion& e = g.completions[j];
        // The text ends inside a UTF-8 character: the cut character comes out as U+FFFD, not an error.
        EXPECT_EQ(c["text"], e.text.substr(0, e.text.size() - 2) + "\xEF\xBF\xBD");
        EXPECT_EQ(c["reward"], e.reward);
        EXPECT_EQ(c["reward_components"]["format"], 0.5);
        EXPECT_EQ(c["reason"], e.reward_reason);
        EXPECT_EQ(c["correct"], e.correct);
        EXPECT_EQ(c["tokens"], e.token_ids.size());
        EXPECT_EQ(c["weight_version"]["value"], e.weight_version);
        EXPECT_EQ(c["weight_version"]["run_epoch"], g.step == 2 ? 2 : 1);
        EXPECT_EQ(c["weight_version"]["step"], g.step);
      }
    }
  }
}

TEST(StoreDump, FiltersByStepAndPromptAndPrintsTextForPeople) {
  StoreRun s;
  auto r = run_grpo("store dump " + s.run() + " --step 1 --format jsonl", s.dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["prompt_id"], "p2");
  EXPECT_EQ(lines[1]["prompt_id"], "p3");

  r = run_grpo("store dump " + s.run() + " --prompt p5 --format jsonl", s.dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["step"], 2);

  r = run_grpo("store dump " + s.run() + " --step 2 --prompt p4", s.dir.path());  // text, the default
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("== step 2 · prompt p4"));
  EXPECT_THAT(r.out, HasSubstr("What is 4 + 1?"));
  EXPECT_THAT(r.out, HasSubstr("reward 1 accuracy=1 format=0.5 overlong=-0 correct (equal)"));
  EXPECT_THAT(r.out, HasSubstr("wrong (different)"));
  EXPECT_THAT(r.out, HasSubstr("version " + grpo::describe_version(grpo::weight_version(2, 2))));
  EXPECT_THAT(r.out, HasSubstr("(run epoch 2, step 2)"));
  EXPECT_THAT(r.out, Not(HasSubstr("prompt p5")));

  r = run_grpo("store dump " + s.run() + " --limit 2 --format jsonl", s.dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);  // the store holds more: the scan stops at the limit
  EXPECT_EQ(lines[0]["step"], 0);
  EXPECT_THAT(r.err, HasSubstr("store dump: 2 group(s)"));
}

// A model's completion is raw bytes (cut inside a character, or noise from a barely trained model):
// text output shows each invalid byte as U+FFFD, so a terminal or a pipe gets valid UTF-8.
TEST(StoreDump, TextShowsInvalidUtf8AsReplacementCharacters) {
  ScratchDir dir{"grpo_store_dump_utf8"};
  fs::create_directories(dir.path() + "/run");
  {
    auto store = ExperienceStore::open(dir.path() + "/run/store");
    ScoredGroup g = make_group(0, 0);
    g.completions[0].text =
        "caf\xc3\xa9 \xff\xfe"
        " cut \xe6\xbc";
    g.completions[0].reward_reason = "not equal: \xc3 vs 7";
    store->put(g);
  }
  const auto r = run_grpo("store dump " + dir.path() + "/run", dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(grpo::utf8::is_valid(r.out));
  EXPECT_THAT(r.out, HasSubstr("caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd cut \xef\xbf\xbd\xef\xbf\xbd"));
  EXPECT_THAT(r.out, HasSubstr("not equal: \xef\xbf\xbd vs 7"));
}

TEST(StoreDump, HostileArgumentsAreClearErrors) {
  StoreRun s;
  fs::create_directories(s.dir.path() + "/empty");
  struct Case {
    std::string args;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"store dump " + s.dir.path() + "/nothing", {"/nothing' is not a directory", "out_dir"}},
      {"store dump " + s.dir.path() + "/empty", {"/empty' is neither a run directory", "store/"}},
      {"store dump " + s.run() + " --step -1", {"--step", "[0, "}},
      {"store dump " + s.run() + " --step two", {"--step", "\"two\""}},
      {"store dump " + s.run() + " --step 9", {"--step 9", "has steps 0..2"}},
      {"store dump " + s.run() + " --limit 0", {"--limit", "[1, "}},
      {"store dump " + s.run() + " --format xml", {"--format", "text or jsonl", "xml"}},
      {"store dump " + s.run() + " --prompt nope", {"--prompt nope", "no group"}},
      {"store list " + s.run(), {"grpo store dump RUN"}},
      {"store dump", {"grpo store dump RUN"}},
  };
  for (const Case& c : cases) {
    const auto r = run_grpo(c.args, s.dir.path());
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
    for (const std::string& say : c.says) EXPECT_THAT(r.err, HasSubstr(say)) << c.args;
  }
  // A RocksDB database that is not an experience store.
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, s.dir.path() + "/foreign", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
  }
  const auto r = run_grpo("store dump " + s.dir.path() + "/foreign", s.dir.path());
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("/foreign' is a RocksDB database but not an experience store"));
}

TEST(ReportSamples, BestWorstAndASeededRandomGroupOfTheLastSteps) {
  ScratchDir dir("grpo_report_samples");
  auto store = ExperienceStore::open(dir.path() + "/store");
  EXPECT_TRUE(grpo::report_samples(*store).empty());
  // Steps 0..4, three groups each; the mean reward of group (step, i) is step * 10 + i.
  for (int64_t step = 0; step < 5; ++step)
    for (int i = 0; i < 3; ++i) {
      ScoredGroup g = make_group(step, int(step * 3 + i), 2);
      for (auto& c : g.completions) c.reward = double(step * 10 + i);
      store->put(g);
    }
  const auto samples = grpo::report_samples(*store, 3, 64, 7);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].label, "best");
  EXPECT_EQ(samples[0].prompt_id, "p14");  // step 4, i 2
  EXPECT_EQ(samples[0].completions[0].reward, 42);
  EXPECT_EQ(samples[0].completions[1].reason, "different");
  EXPECT_EQ(samples[1].label, "worst");
  EXPECT_EQ(samples[1].prompt_id, "p6");  // step 2 (the oldest of the last three), i 0
  EXPECT_EQ(samples[2].label, "random");
  EXPECT_GE(samples[2].step, 2);
  EXPECT_NE(samples[2].prompt_id, "p14");
  EXPECT_NE(samples[2].prompt_id, "p6");
  // The same seed draws the same group; the draw covers the others.
  std::set<std::string> drawn;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    const auto again = grpo::report_samples(*store, 3, 64, seed);
    if (seed == 7) EXPECT_EQ(again[2].prompt_id, samples[2].prompt_id);
    drawn.insert(again[2].prompt_id);
  }
  EXPECT_EQ(drawn.size(), 7u);  // 9 groups less best and worst
  // A cap on the groups read keeps the newest: 4 groups = step 4's three and one of step 3.
  const auto capped = grpo::report_samples(*store, 3, 4, 0);
  ASSERT_EQ(capped.size(), 3u);
  EXPECT_EQ(capped[1].prompt_id, "p9");
  // One group: shown once, as the best.
  auto single = ExperienceStore::open(dir.path() + "/single");
  single->put(make_group(0, 0));
  ASSERT_EQ(grpo::report_samples(*single).size(), 1u);
}

// A tiny `grpo train` run (learner_run_testutil.h): its store is dumped while the run writes it,
// the run is not disturbed, and report.html shows the best, worst and a random group. With Arrow,
// the run trains on its prompts as a verl-style Parquet file written by pyarrow.
TEST(StoreDump, ReadsTheStoreOfARunningTrainAndTheReportShowsSamples) {
  ScratchDir dir("grpo_store_train");
  const fs::path root = dir.path();
  grpo::testing::write_tiny_run_inputs(root);
  std::string data = "{path: " + (root / "train.jsonl").string() + "}";
#ifdef GRPO_PARQUET
  std::ofstream(root / "to_verl.py") << "import json, sys, pyarrow as pa, pyarrow.parquet as pq\n"
                                        "rows = [json.loads(l) for l in open(sys.argv[1])]\n"
                                        "pq.write_table(pa.Table.from_pylist([{'data_source': 'tiny', 'prompt': "
                                        "[{'role': 'user', 'content': r['prompt']}], 'reward_model': {'ground_truth': "
                                        "r['answer']}, 'extra_info': {'index': i}} for i, r in enumerate(rows)]), "
                                        "sys.argv[2])\n";
  const std::string convert = std::string(GRPO_PYTHON) + " " + (root / "to_verl.py").string() + " " +
                              (root / "train.jsonl").string() + " " + (root / "train.parquet").string();
  ASSERT_EQ(std::system(convert.c_str()), 0) << convert;
  data = "{path: " + (root / "train.parquet").string() + ", format: verl}";
#endif
  const std::string config = (root / "run.yaml").string();
  std::ofstream(config) << "run: {name: s, out_dir: " << (root / "out").string() << ", seed: 3, threads: 1}\n"
                        << "model: {path: " << (root / "model").string() << "}\n"
                        << "template: " << GRPO_SOURCE_DIR << "/configs/chat_templates/chatml-think.yaml\n"
                        << "data:\n  train: " << data << "\n"
                        << "reward: {config: " << GRPO_SOURCE_DIR << "/configs/reward.yaml, verifier: shaped}\n"
                        << "rollout: {workers: 1, group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 10}}\n"
                        << "trainer: {lr: 0.001, micro_batch_size: 4, mini_batches: 2, threads: 1}\n"
                        << "train: {steps: 6, prompts_per_step: 3, checkpoint_every: 6}\n";
  grpo::testing::Subprocess train({GRPO_BINARY, "train", config, "--quiet"}, "/dev/null", /*merge_stderr=*/true);
  const std::string store = (root / "out" / "store").string();
  int dumped_while_running = 0, status = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while ((status = train.wait(0)) == -1 && std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(store + "/CURRENT")) {
      const auto r = run_grpo("store dump " + (root / "out").string() + " --format jsonl", dir.path());
      if (r.code == 0 && !r.out.empty()) {
        ++dumped_while_running;
        EXPECT_EQ(parse_lines(r.out).front()["step"], 0);
      } else if (r.code != 0) {
        ADD_FAILURE() << "dump beside the running train failed: " << r.err;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string log = train.read_all();
  ASSERT_EQ(status, 0) << log;
  EXPECT_GT(dumped_while_running, 0) << "the run ended before a group could be read";

  const auto r = run_grpo("store dump " + (root / "out").string() + " --format jsonl", dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = parse_lines(r.out);
  int64_t stored = 0;
  {
    auto s = ExperienceStore::open(store, {.create_if_missing = false, .read_only = true});
    stored = s->count();
  }
  EXPECT_EQ(int64_t(lines.size()), stored);
  EXPECT_GE(lines.size(), 6u * 3u);
  EXPECT_EQ(lines.back()["completions"].size(), 4u);
  EXPECT_EQ(lines.back()["completions"][0]["weight_version"]["run_epoch"], 1);
  EXPECT_THAT(lines.back()["prompt"].get<std::string>(), HasSubstr("What is "));
#ifdef GRPO_PARQUET
  EXPECT_THAT(lines.back()["prompt_id"].get<std::string>(), ::testing::StartsWith("tiny:"));
#endif

  for (const std::string& how : {"train", "grpo report"}) {
    if (std::string(how) == "grpo report") {
      fs::remove(root / "out" / "report.html");
      const auto rep = run_grpo("report --run " + (root / "out").string(), dir.path());
      ASSERT_EQ(rep.code, 0) << rep.err;
    }
    std::stringstream html;
    html << std::ifstream(root / "out" / "report.html").rdbuf();
    EXPECT_THAT(html.str(), HasSubstr("<h2 id=\"samples\">Samples</h2>")) << how;
    for (const char* label : {"best", "worst", "random"})
      EXPECT_THAT(html.str(), HasSubstr("data-label=\"" + std::string(label) + "\"")) << how;
    EXPECT_THAT(html.str(), HasSubstr("What is ")) << how;
  }
}
