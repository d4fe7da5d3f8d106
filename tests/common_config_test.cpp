#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

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
