#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/config_diff.h"
#include "common/did_you_mean.h"
#include "file_testutil.h"

using grpo::Config;
using grpo::ckpt_test::error_of;

TEST(Config, TypedAccessAndDefaults) {
  auto c = Config::parse("train:\n  steps: 10\n  lr: 1e-6\n  name: run\n  ids: [1, 2, 3]\n  on: true\n", "t.yaml");
  EXPECT_EQ(c.get<int>("train.steps"), 10);
  EXPECT_DOUBLE_EQ(c.get<double>("train.lr"), 1e-6);
  EXPECT_EQ(c.get<std::string>("train.name"), "run");
  EXPECT_EQ(c.get<std::vector<int>>("train.ids"), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(c.get<bool>("train.on"));
  EXPECT_EQ(c.get<int>("train.missing", 7), 7);
  EXPECT_EQ(c.sub("train").get<int>("steps"), 10);
}

TEST(Config, OverridesCreateAndReplace) {
  auto c = Config::parse("train:\n  steps: 10\n", "t.yaml");
  c.apply_override("train.steps=25");
  c.apply_override("new.deep.key=[1,2]");
  c.apply_override("name=hello world");
  EXPECT_EQ(c.get<int>("train.steps"), 25);
  EXPECT_EQ(c.get<std::vector<int>>("new.deep.key"), (std::vector<int>{1, 2}));
  EXPECT_EQ(c.get<std::string>("name"), "hello world");
  EXPECT_NE(error_of([&] { c.apply_override("novalue"); }).find("key.path=value"), std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_override("train.steps.x=1"); }).find("'train.steps' is not a map"),
            std::string::npos);
}

TEST(Config, ErrorsNameFileKeyAndType) {
  auto c = Config::parse("train:\n  steps: ten\n  ids: [1, x]\n", "configs/run.yaml");
  EXPECT_EQ(error_of([&] { c.get<int>("train.steps"); }),
            "configs/run.yaml: key 'train.steps': expected an integer, got \"ten\"");
  EXPECT_EQ(error_of([&] { c.get<std::vector<int>>("train.ids"); }),
            "configs/run.yaml: key 'train.ids[1]': expected an integer, got \"x\"");
  EXPECT_EQ(error_of([&] { c.get<int>("train.epochs"); }),
            "configs/run.yaml: key 'train.epochs': required key is missing");
  EXPECT_EQ(error_of([&] { c.sub("train").get<double>("steps"); }),
            "configs/run.yaml: key 'train.steps': expected a number, got \"ten\"");
  auto t = c.sub("train");
  EXPECT_NE(error_of([&] { t.require_known({"steps"}); }).find("key 'train.ids': unknown key"), std::string::npos);
}

TEST(Config, FileErrors) {
  EXPECT_NE(error_of([] { Config::load("/nonexistent/x.yaml"); }).find("/nonexistent/x.yaml: cannot open"),
            std::string::npos);
  std::string path = testing::TempDir() + "/bad.yaml";
  std::ofstream(path) << "a: [1, 2\nb: 3\n";
  std::string e = error_of([&] { Config::load(path); });
  EXPECT_NE(e.find(path + ": invalid YAML at line"), std::string::npos) << e;
  std::ofstream(path) << "- 1\n- 2\n";
  EXPECT_NE(error_of([&] { Config::load(path); }).find("expected a YAML map"), std::string::npos);
}

// A key left empty (a file cut short) and a key given twice are refused naming the key and line;
// null and ~ are values (a model config's q_lora_rank: null).
TEST(Config, EmptyAndDuplicateKeys) {
  EXPECT_EQ(error_of([] { Config::parse("train:\n  steps: 1\n  optim:", "cut.yaml"); }),
            "cut.yaml: key 'train.optim' (line 3): no value (remove the key, or is the file cut short?)");
  EXPECT_EQ(error_of([] { Config::parse("a: {b: 1, c: }\n", "f.yaml"); }),
            "f.yaml: key 'a.c' (line 1): no value (remove the key, or is the file cut short?)");
  EXPECT_EQ(error_of([] { Config::parse("a: 1\nb: 2\na: 3\n", "d.yaml"); }), "d.yaml: key 'a' (line 3): duplicate key");
  const Config c = Config::parse("m: {q: null, r: ~, s: Null}\nn: NULL\n", "n.yaml");
  EXPECT_FALSE(c.has("m.q"));
  EXPECT_TRUE(c.sub("m").keys().size() == 3);
  Config o = Config::parse("", "o.yaml");
  EXPECT_NE(error_of([&] { o.apply_override("a={b: 1, b: 2}"); }).find("override 'a={b: 1, b: 2}': key 'b'"),
            std::string::npos);
}

TEST(Config, PathsResolveAgainstTheFileOrTheWorkingDirectory) {
  const std::string dir = ::testing::TempDir() + "grpo_config_paths";
  std::filesystem::create_directories(dir + "/sub");
  std::ofstream(dir + "/sub/run.yaml") << "model: {path: m, tokenizer: /abs/t.json}\ndata: {files: [a.jsonl, ../b]}\n";
  const Config c = Config::load(dir + "/sub/run.yaml", {"data.extra=x.jsonl"});
  EXPECT_EQ(c.get_path("model.path"), dir + "/sub/m");
  EXPECT_EQ(c.sub("model").get_path("path"), dir + "/sub/m");
  EXPECT_EQ(c.get_path("model.tokenizer"), "/abs/t.json");
  EXPECT_EQ(c.get_paths("data.files"), (std::vector<std::string>{dir + "/sub/a.jsonl", dir + "/b"}));
  EXPECT_EQ(c.get_path("data.extra"), "x.jsonl");  // an override: the working directory
  EXPECT_EQ(c.get_path("data.none", "d"), "d");
  // An override of the map above a key counts too.
  const Config o = Config::load(dir + "/sub/run.yaml", {"model={path: n}"});
  EXPECT_EQ(o.get_path("model.path"), "n");
  // A config file in the working directory, and a parsed one: as written.
  EXPECT_EQ(Config::parse("p: q\n", "x").get_path("p"), "q");
  std::filesystem::remove_all(dir);
}

TEST(Config, RecordedDefaultsAndDifferences) {
  Config c = Config::parse("train: {steps: 5}\n", "t.yaml");
  c.record_defaults();
  EXPECT_EQ(c.get<int>("train.steps", 10), 5);
  EXPECT_DOUBLE_EQ(c.sub("trainer").get<double>("clip", 0.2), 0.2);
  EXPECT_EQ(c.sub("run").get<std::vector<std::string>>("addresses", {}), std::vector<std::string>{});
  EXPECT_TRUE(c.has("trainer.clip"));
  EXPECT_EQ(c.get<std::string>("trainer.clip"), "0.2");  // not 0.20000000000000001
  const Config before = Config::parse("train: {steps: 5}\ntrainer: {clip: 0.2, lr: 1}\n", "a.yaml");
  EXPECT_EQ(grpo::config_differences(before, c),
            (std::vector<std::string>{"run.addresses: (unset) -> []", "trainer.lr: 1 -> (unset)"}));
  EXPECT_EQ(grpo::config_differences(before, c, {"run.addresses", "trainer.lr"}), std::vector<std::string>{});
}

TEST(Config, UnknownKeySuggestsTheClosest) {
  const Config c = Config::parse("train: {stesp: 1, zzzzzzzz: 2}\n", "t.yaml");
  EXPECT_NE(
      error_of([&] {
        c.sub("train").require_known({"steps", "seed"});
      }).find("t.yaml: key 'train.stesp': unknown key (did you mean 'train.steps'?) (expected one of: seed, steps)"),
      std::string::npos);
  EXPECT_EQ(grpo::closest_name("zzzzzzzz", {"steps", "seed"}), "");
  EXPECT_EQ(grpo::closest_name("lr", {"lr", "l"}), "lr");
}
