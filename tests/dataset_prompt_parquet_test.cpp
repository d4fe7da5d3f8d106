// Parquet prompt datasets (dataset/prompt_dataset.h on dataset/parquet): rows written by pyarrow (the project's Python,
// a live oracle) load to the same items as the same rows in JSONL, in the shapes of Hugging Face's gsm8k and MATH and
// of verl's data files; bad files and Hugging Face Hub ids are clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "dataset/prompt_dataset.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class ParquetDataset : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef GRPO_PARQUET
    GTEST_SKIP() << "this build has no Arrow (cmake/arrow.cmake found no pyarrow)";
#endif
    dir_ = fs::temp_directory_path() / ("grpo_parquet_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // DIR/NAME.parquet (written by pyarrow from `rows`) and DIR/NAME.jsonl with the same rows.
  std::pair<std::string, std::string> write(const std::string& name, const json& rows) {
    const std::string base = (dir_ / name).string();
    std::ofstream(base + ".json") << rows.dump();
    std::ofstream(dir_ / "write_rows.py") << "import json, sys, pyarrow as pa, pyarrow.parquet as pq\n"
                                             "rows = json.load(open(sys.argv[1] + '.json'))\n"
                                             "pq.write_table(pa.Table.from_pylist(rows), sys.argv[1] + '.parquet')\n"
                                             "with open(sys.argv[1] + '.jsonl', 'w') as f:\n"
                                             "    f.writelines(json.dumps(r) + '\\n' for r in rows)\n";
    const std::string cmd = std::string(GRPO_PYTHON) + " " + (dir_ / "write_rows.py").string() + " " + base;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return {base + ".parquet", base + ".jsonl"};
  }

  static PromptDatasetSpec spec(const std::string& path, const std::string& format) {
    PromptDatasetSpec s;
    s.path = path;
    s.format = format;
    return s;
  }

  // Loads both files as `format`; the items must agree (ids too when `same_ids`).
  std::vector<PromptItem> load_both(const std::string& name, const json& rows, const std::string& format,
                                    bool same_ids = true) {
    const auto [parquet, jsonl] = write(name, rows);
    const std::vector<PromptItem> a = load_prompt_dataset(spec(parquet, format));
    const std::vector<PromptItem> b = load_prompt_dataset(spec(jsonl, format));
    EXPECT_EQ(a.size(), rows.size());
    EXPECT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      EXPECT_EQ(a[i].prompt, b[i].prompt) << i;
      EXPECT_EQ(a[i].reference, b[i].reference) << i;
      EXPECT_EQ(a[i].reference_is_json, b[i].reference_is_json) << i;
      EXPECT_EQ(a[i].verifier, b[i].verifier) << i;
      if (same_ids) EXPECT_EQ(a[i].id, b[i].id) << i;
    }
    return a;
  }

  fs::path dir_;
};

TEST_F(ParquetDataset, HuggingFaceGsm8kRowsLoadLikeTheirJsonl) {
  const json rows = {{{"question", "Natalia sold 48 clips. How many?"}, {"answer", "48 + 24 = 72\n#### 72"}},
                     {{"question", "A big sum? ünïcode"}, {"answer", "so\n#### 1,234"}}};
  const auto items = load_both("gsm8k", rows, "gsm8k", /*same_ids=*/false);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].prompt, "A big sum? ünïcode");
  EXPECT_EQ(items[1].reference, "1234");
  EXPECT_THAT(items[0].id, HasSubstr("gsm8k.parquet:row 1"));
}

TEST_F(ParquetDataset, MathSolutionsGiveTheirLastBoxedAnswer) {
  const json rows = {{{"problem", "Half of one?"},
                      {"solution", "First \\boxed{2} is wrong; it is $\\boxed{\\frac{1}{2}}$."},
                      {"level", "Level 1"},
                      {"id", 7}},
                     {{"problem", "Box?"}, {"solution", "\\fbox{x^{2}}"}, {"level", "Level 2"}, {"id", 8}}};
  const auto items = load_both("math", rows, "math");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].reference, "\\frac{1}{2}");
  EXPECT_EQ(items[0].id, "7");
  EXPECT_EQ(items[1].reference, "x^{2}");
}

TEST_F(ParquetDataset, VerlRowsWithChatPromptsAndRewardModelGroundTruth) {
  auto row = [](const std::string& content, const json& truth, int index) {
    return json{{"data_source", "openai/gsm8k"},
                {"prompt", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", content}}}},
                {"ability", "math"},
                {"reward_model", {{"style", "rule"}, {"ground_truth", truth}}},
                {"extra_info", {{"split", "train"}, {"index", index}}}};
  };
  const json rows = {row("What is 6 * 12?", "72", 0), row("What is 2 + 2?", "4", 1)};
  const auto items = load_both("verl", rows, "verl");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].prompt, "What is 6 * 12?");
  EXPECT_EQ(items[0].reference, "72");
  EXPECT_EQ(items[0].id, "openai/gsm8k:0");
  EXPECT_EQ(items[1].id, "openai/gsm8k:1");

  // A plain string prompt, a numeric ground truth.
  const json plain = {{{"prompt", "1 + 1?"}, {"reward_model", {{"ground_truth", 2}}}}};
  const auto p = load_both("verl_plain", plain, "verl", false);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].prompt, "1 + 1?");
  EXPECT_EQ(p[0].reference, "2");
}

TEST_F(ParquetDataset, BadRowsNameTheRowAndTheField) {
  const json rows = {{{"prompt", "ok?"}, {"reward_model", {{"ground_truth", "1"}}}},
                     {{"prompt", "no truth"}, {"reward_model", {{"ground_truth", nullptr}}}}};
  const auto [parquet, jsonl] = write("bad", rows);
  try {
    load_prompt_dataset(spec(parquet, "verl"));
    ADD_FAILURE() << "loaded";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.parquet:row 2"));
    EXPECT_THAT(e.what(), HasSubstr("ground_truth"));
  }
  PromptDatasetSpec s = spec(parquet, "verl");
  s.skip_bad = true;
  PromptDatasetReport report;
  EXPECT_EQ(load_prompt_dataset(s, &report).size(), 1u);
  EXPECT_EQ(report.rows, 2);
  EXPECT_EQ(report.skipped, 1);
}

TEST_F(ParquetDataset, AFileThatIsNotParquetIsAnError) {
  const std::string path = (dir_ / "fake.parquet").string();
  std::ofstream(path) << "{\"prompt\": \"not parquet\"}\n";
  try {
    load_prompt_dataset(spec(path, "jsonl"));
    ADD_FAILURE() << "loaded";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path + ": not a readable Parquet file"));
  }
}

TEST(PromptDatasetHubIds, FailWithTheCommandThatDownloadsThem) {
  for (const std::string path : {"openai/gsm8k", "hf://datasets/openai/gsm8k/main/train-00000-of-00001.parquet"}) {
    try {
      load_prompt_dataset({.path = path, .format = "gsm8k"});
      ADD_FAILURE() << path;
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr(path + ": no such file"));
      EXPECT_THAT(e.what(),
                  HasSubstr("huggingface-cli download --repo-type dataset openai/gsm8k --local-dir data/gsm8k"));
    }
  }
  // A missing local file is no hub id.
  try {
    load_prompt_dataset({.path = "data/nothing.jsonl", .format = "jsonl"});
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr("huggingface")));
    EXPECT_THAT(e.what(), HasSubstr("data/nothing.jsonl: cannot open"));
  }
  // Through the binary (`grpo eval`, a command of the build with the services): the dataset is
  // checked before the model is loaded.
  if (std::system((std::string(GRPO_BINARY) + " eval --help >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "no `grpo eval` in this build (GRPO_SERVICES=OFF)";
  FILE* p = ::popen(
      (std::string(GRPO_BINARY) + " eval --model /no-model --data openai/gsm8k --format gsm8k 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(WEXITSTATUS(::pclose(p)), 2) << out;
  EXPECT_THAT(out, HasSubstr("huggingface-cli download --repo-type dataset openai/gsm8k --local-dir data/gsm8k"));
}

}  // namespace
}  // namespace grpo
