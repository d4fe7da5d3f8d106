// dataset/prompt_dataset.h on the real public datasets (tests/data/math, tests/data/code) and on
// small hand-written files for the generic format and every kind of bad row.
#include "dataset/prompt_dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kMath = std::string(GRPO_TEST_DATA) + "/math/";
const std::string kCode = std::string(GRPO_TEST_DATA) + "/code/";

PromptDatasetSpec spec_of(const std::string& path, const std::string& format) {
  PromptDatasetSpec s;
  s.path = path;
  s.format = format;
  return s;
}

// A temp file holding `text`, removed with the fixture.
class PromptDatasetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("grpo_prompt_ds_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  // The InputError message of loading `text` as `format`.
  std::string error_of(const std::string& text, const std::string& format = "jsonl") {
    std::string p = write("bad.jsonl", text);
    try {
      load_prompt_dataset(spec_of(p, format));
    } catch (const InputError& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

TEST(PromptDataset, Gsm8kTakesTheAnswerAfterHashesWithoutCommas) {
  auto items = load_prompt_dataset(spec_of(kMath + "gsm8k_test.jsonl", "gsm8k"));
  ASSERT_EQ(items.size(), 1319u);
  EXPECT_EQ(items[0].reference, "18");
  EXPECT_EQ(items[0].prompt.rfind("Janet", 0), 0u) << items[0].prompt;
  EXPECT_EQ(items[0].id, kMath + "gsm8k_test.jsonl:1");
  EXPECT_EQ(items[146].reference, "2125");  // "#### 2,125" on line 147
  EXPECT_FALSE(items[0].reference_is_json);
  EXPECT_EQ(items[0].verifier, "");
  for (const auto& it : items) {
    EXPECT_EQ(it.reference.find_first_of(",# "), std::string::npos) << it.id << " " << it.reference;
    EXPECT_FALSE(it.prompt.empty());
  }
}

TEST(PromptDataset, Math500UsesExpectedAnswerAndId) {
  auto items = load_prompt_dataset(spec_of(kMath + "math500.jsonl", "math500"));
  ASSERT_EQ(items.size(), 500u);
  EXPECT_EQ(items[0].id, "test/algebra/4.json");
  EXPECT_EQ(items[0].reference, "4");
  EXPECT_EQ(items[0].prompt, "If $2^8=4^x$, what is the value of $x$?");
}

TEST(PromptDataset, AimeDropsZeroPadding) {
  auto items = load_prompt_dataset(spec_of(kMath + "aime24.jsonl", "aime"));
  ASSERT_EQ(items.size(), 30u);
  EXPECT_EQ(items[0].id, "60");
  EXPECT_EQ(items[0].reference, "204");
  EXPECT_EQ(items[7].id, "67");
  EXPECT_EQ(items[7].reference, "25");   // "025"
  EXPECT_EQ(items[24].reference, "33");  // "033"
  for (const auto& it : items) EXPECT_NE(it.reference[0], '0') << it.id;
}

TEST(PromptDataset, Amc23PrintsIntegralFloatsAsIntegers) {
  auto items = load_prompt_dataset(spec_of(kMath + "amc23.jsonl", "amc23"));
  ASSERT_EQ(items.size(), 40u);
  EXPECT_EQ(items[0].id, "0");
  EXPECT_EQ(items[0].reference, "27");   // 27.0
  EXPECT_EQ(items[15].reference, "-1");  // -1.0
  EXPECT_EQ(items[3].reference, "3159");
}

TEST(PromptDataset, HumanEvalFromGzipBecomesCodeTests) {
  auto items = load_prompt_dataset(spec_of(kCode + "HumanEval.jsonl.gz", "humaneval"));
  ASSERT_EQ(items.size(), 164u);
  EXPECT_EQ(items[0].id, "HumanEval/0");
  EXPECT_EQ(items[0].verifier, "code");
  ASSERT_TRUE(items[0].reference_is_json);
  json ref = json::parse(items[0].reference);
  EXPECT_EQ(ref["entry_point"], "has_close_elements");
  EXPECT_NE(ref["test"].get<std::string>().find("def check(candidate)"), std::string::npos);
  EXPECT_NE(items[0].prompt.find("```python\nfrom typing import List\n"), std::string::npos);
  EXPECT_NE(items[0].prompt.find("def has_close_elements("), std::string::npos);
}

TEST(PromptDataset, MbppListsTheTestsInThePrompt) {
  auto items = load_prompt_dataset(spec_of(kCode + "mbpp.jsonl", "mbpp"));
  ASSERT_EQ(items.size(), 974u);
  EXPECT_EQ(items[0].id, "1");
  EXPECT_EQ(items[0].verifier, "code");
  json ref = json::parse(items[0].reference);
  EXPECT_EQ(ref["language"], "python");
  ASSERT_EQ(ref["tests"].size(), 3u);
  EXPECT_EQ(ref["tests"][0], "assert min_cost([[1, 2, 3], [4, 8, 2], [1, 5, 3]], 2, 2) == 8");
  EXPECT_FALSE(ref.contains("setup"));  // empty test_setup_code
  EXPECT_EQ(items[0].prompt.rfind("Write a function to find the minimum cost path", 0), 0u);
  EXPECT_NE(items[0].prompt.find(ref["tests"][0].get<std::string>()), std::string::npos);
  // Two rows carry setup code (task_id 367 and 927).
  json ref367 = json::parse(items[366].reference);
  EXPECT_EQ(items[366].id, "367");
  EXPECT_TRUE(ref367.contains("setup"));
}

TEST(PromptDataset, ShuffleIsSeededAndLimitComesAfter) {
  auto spec = spec_of(kMath + "aime24.jsonl", "aime");
  auto plain = load_prompt_dataset(spec);
  spec.shuffle = true;
  spec.seed = 7;
  auto a = load_prompt_dataset(spec);
  auto b = load_prompt_dataset(spec);
  ASSERT_EQ(a.size(), 30u);
  std::vector<std::string> ia, ib, ip;
  for (auto& x : a) ia.push_back(x.id);
  for (auto& x : b) ib.push_back(x.id);
  for (auto& x : plain) ip.push_back(x.id);
  EXPECT_EQ(ia, ib);
  EXPECT_NE(ia, ip);
  EXPECT_TRUE(std::is_permutation(ia.begin(), ia.end(), ip.begin()));
  spec.seed = 8;
  std::vector<std::string> ic;
  for (auto& x : load_prompt_dataset(spec)) ic.push_back(x.id);
  EXPECT_NE(ia, ic);
  spec.seed = 7;
  spec.limit = 5;
  auto limited = load_prompt_dataset(spec);
  ASSERT_EQ(limited.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limited[i].id, ia[i]);
}

TEST_F(PromptDatasetFiles, GenericJsonlWithConfiguredFields) {
  std::string p = write("g.jsonl",
                        "{\"q\": \"What is 6*7?\", \"a\": 42, \"key\": 9}\n"
                        "\n"
                        "{\"q\": \"Half of 1?\", \"a\": 0.5}\n"
                        "{\"q\": \"Write f\", \"a\": {\"tests\": [\"assert f() == 1\"]}, \"key\": \"x\"}");
  Config cfg = Config::parse("data:\n  heldout: {path: " + p +
                                 ", prompt_field: q, answer_field: a, id_field: key, "
                                 "verifier: math}\n",
                             "run.yaml");
  auto spec = prompt_dataset_spec_from_config(cfg.sub("data.heldout"));
  EXPECT_EQ(spec.format, "jsonl");
  EXPECT_EQ(spec.prompt_field, "q");
  // id_field named explicitly: every row needs it.
  try {
    load_prompt_dataset(spec);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(p + ":3: missing field \"key\""), std::string::npos) << e.what();
  }
  spec.id_field.clear();  // default "id": absent -> file:line
  auto items = load_prompt_dataset(spec);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].id, p + ":1");
  EXPECT_EQ(items[0].reference, "42");
  EXPECT_EQ(items[1].id, p + ":3");
  EXPECT_EQ(items[1].reference, "0.5");
  EXPECT_TRUE(items[2].reference_is_json);
  EXPECT_EQ(json::parse(items[2].reference)["tests"][0], "assert f() == 1");
  EXPECT_EQ(items[2].verifier, "math");  // the spec's verifier overrides
}

TEST_F(PromptDatasetFiles, BadRowsNameFileLineAndField) {
  const std::string f = (dir_ / "bad.jsonl").string();
  auto has = [](const std::string& msg, const std::string& want) { return msg.find(want) != std::string::npos; };
  std::string ok = "{\"prompt\": \"p\", \"answer\": \"1\"}\n";
  std::string e = error_of(ok + "{not json\n");
  EXPECT_TRUE(has(e, f + ":2: not valid JSON")) << e;
  e = error_of(ok + "[1, 2]\n");
  EXPECT_TRUE(has(e, f + ":2: expected a JSON object")) << e;
  e = error_of(ok + "{\"prompt\": \"p\"}\n");
  EXPECT_TRUE(has(e, f + ":2: missing field \"answer\"")) << e;
  e = error_of("{\"prompt\": \"  \", \"answer\": \"1\"}\n");
  EXPECT_TRUE(has(e, f + ":1: field \"prompt\": empty")) << e;
  e = error_of("{\"prompt\": 3, \"answer\": \"1\"}\n");
  EXPECT_TRUE(has(e, f + ":1: field \"prompt\": expected a string, got number")) << e;
  e = error_of("{\"prompt\": \"p\", \"answer\": true}\n");
  EXPECT_TRUE(has(e, f + ":1: field \"answer\": expected a string or a number")) << e;
  e = error_of(
      "{\"prompt\": \"p\", \"answer\": \"1\", \"id\": 5}\n{\"prompt\": \"q\", \"answer\": \"2\", \"id\": \"5\"}\n");
  EXPECT_TRUE(has(e, f + ":2: field \"id\": duplicate id '5'")) << e;
  e = error_of("{\"question\": \"q\", \"answer\": \"no marker\"}\n", "gsm8k");
  EXPECT_TRUE(has(e, f + ":1: field \"answer\": no final answer after \"#### \"")) << e;
  e = error_of("{\"text\": \"t\", \"test_list\": []}\n", "mbpp");
  EXPECT_TRUE(has(e, f + ":1: field \"test_list\": expected a non-empty list")) << e;
  e = error_of("{\"prompt\": \"def f():\", \"test\": \"def check(c): pass\"}\n", "humaneval");
  EXPECT_TRUE(has(e, f + ":1: missing field \"entry_point\"")) << e;
  e = error_of("\n\n");
  EXPECT_TRUE(has(e, f + ": no usable rows (0 read, 0 skipped)")) << e;

  PromptDatasetSpec s = spec_of(f, "jsonl");
  s.max_line_bytes = 40;
  write("bad.jsonl", ok + "{\"prompt\": \"" + std::string(100, 'x') + "\", \"answer\": \"1\"}\n" + ok);
  try {
    load_prompt_dataset(s);
    FAIL() << "expected an InputError";
  } catch (const InputError& err) {
    EXPECT_TRUE(has(err.what(), f + ":2: line longer than max_line_bytes (40)")) << err.what();
  }

  try {
    load_prompt_dataset(spec_of((dir_ / "absent.jsonl").string(), "jsonl"));
    FAIL() << "expected an InputError";
  } catch (const InputError& err) {
    EXPECT_TRUE(has(err.what(), "absent.jsonl: cannot open the dataset file")) << err.what();
  }
  try {
    load_prompt_dataset(spec_of(dir_.string(), "jsonl"));  // a directory
    FAIL() << "expected an InputError";
  } catch (const InputError& err) {
    EXPECT_TRUE(has(err.what(), dir_.string() + ": cannot")) << err.what();
  }
}

TEST_F(PromptDatasetFiles, SkipBadCountsAndReports) {
  std::string p = write("mixed.jsonl",
                        "{\"prompt\": \"a\", \"answer\": \"1\"}\n"
                        "garbage\n"
                        "{\"prompt\": \"b\"}\n"
                        "{\"prompt\": \"c\", \"answer\": \"3\"}\n");
  PromptDatasetSpec s = spec_of(p, "jsonl");
  s.skip_bad = true;
  PromptDatasetReport rep;
  auto items = load_prompt_dataset(s, &rep);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].prompt, "c");
  EXPECT_EQ(rep.rows, 4);
  EXPECT_EQ(rep.skipped, 2);
  EXPECT_EQ(rep.missing_answer, 1);  // row 3; row 2 is not JSON
  ASSERT_EQ(rep.reasons.size(), 2u);
  EXPECT_EQ(rep.reasons[0], p + ":2: not valid JSON");
  EXPECT_EQ(rep.reasons[1], p + ":3: missing field \"answer\"");
  write("mixed.jsonl",
        "{\"prompt\": \"a\", \"answer\": \" \"}\n"  // blank
        "{\"prompt\": \"b\", \"answer\": null}\n"
        "{\"prompt\": \"\", \"answer\": \"2\"}\n"  // empty prompt: bad, but it has an answer
        "{\"prompt\": \"c\", \"answer\": \"3\"}\n");
  load_prompt_dataset(s, &rep);
  EXPECT_EQ(rep.skipped, 3);
  EXPECT_EQ(rep.missing_answer, 2);
  write("mixed.jsonl", "x\ny\n");
  try {
    load_prompt_dataset(s, &rep);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no usable rows (2 read, 2 skipped)"), std::string::npos);
  }
}

TEST(PromptDatasetConfig, ErrorsNameTheKey) {
  auto err = [](const std::string& yaml) {
    try {
      prompt_dataset_spec_from_config(Config::parse(yaml, "run.yaml").sub("data.train"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(err("data: {train: {path: x.jsonl, promt_field: q}}"),
            "run.yaml: key 'data.train.promt_field': unknown key (did you mean 'data.train.prompt_field'?) "
            "(expected one of: answer_field, "
            "format, id_field, limit, max_line_bytes, path, prompt_field, seed, shuffle, skip_bad, "
            "verifier)");
  EXPECT_EQ(err("data: {train: {format: gsm8k}}"), "run.yaml: key 'data.train.path': required key is missing");
  EXPECT_EQ(err("data: {train: {path: x, format: csv}}"),
            "run.yaml: key 'data.train.format': unknown format 'csv' (expected one of: jsonl, gsm8k, "
            "math, math500, aime, amc23, humaneval, mbpp, verl)");
  EXPECT_EQ(err("data: {train: {path: x, limit: -1}}"), "run.yaml: key 'data.train.limit': expected >= 0 (0 = all)");
  EXPECT_NE(err("data: {train: {path: x, shuffle: maybe}}").find("key 'data.train.shuffle': expected"),
            std::string::npos);
  auto spec = prompt_dataset_spec_from_config(
      Config::parse("data: {train: {path: x, format: aime, limit: 3, shuffle: true, seed: 5, skip_bad: true}}",
                    "run.yaml")
          .sub("data.train"));
  EXPECT_EQ(spec.format, "aime");
  EXPECT_EQ(spec.limit, 3);
  EXPECT_TRUE(spec.shuffle);
  EXPECT_EQ(spec.seed, 5u);
  EXPECT_TRUE(spec.skip_bad);
}

}  // namespace
}  // namespace grpo
