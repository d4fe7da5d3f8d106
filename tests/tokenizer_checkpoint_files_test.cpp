// tokenizer/checkpoint_files.h: the files a checkpoint carries for its tokenizer (copies of the
// run's files, a generation_config.json with the ids HF expects) and the tokenizer/model vocabulary
// rule, on both sides of its bounds with the sizes of real model families and the tiny-zero case.
#include "tokenizer/checkpoint_files.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tokenizer_test_util.h"

namespace grpo {
namespace {

using testing::error_of;
using testing::fixture_dir;
using testing::TempDir;

std::string slurp(const std::string& path) {
  std::stringstream ss;
  ss << std::ifstream(path, std::ios::binary).rdbuf();
  return ss.str();
}

TEST(TokenizerCheckpointFiles, CopiesTheRunsFilesAndWritesTheGenerationConfig) {
  TempDir dir;
  dir.write("tokenizer.json", slurp(fixture_dir() + "/tokenizer.json"));
  const std::string config =
      R"({"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": {"content": "<｜end▁of▁sentence｜>"},)"
      R"( "pad_token": "</think>", "model_max_length": 4096})";
  dir.write("tokenizer_config.json", config);
  const auto files = tokenizer_checkpoint_files(Tokenizer::load(dir.path()));
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files.at("tokenizer.json"), slurp(fixture_dir() + "/tokenizer.json"));
  EXPECT_EQ(files.at("tokenizer_config.json"), config);  // byte for byte: chat template, max length, ...
  const auto generation = nlohmann::json::parse(files.at("generation_config.json"));
  EXPECT_EQ(generation["bos_token_id"], 0);
  EXPECT_EQ(generation["eos_token_id"], 1);
  EXPECT_EQ(generation["pad_token_id"], 3);
}

TEST(TokenizerCheckpointFiles, WithoutATokenizerConfigWritesAMinimalOne) {
  const auto files = tokenizer_checkpoint_files(Tokenizer::load(fixture_dir()));
  const auto config = nlohmann::json::parse(files.at("tokenizer_config.json"));
  EXPECT_EQ(config, nlohmann::json({{"tokenizer_class", "PreTrainedTokenizerFast"}})) << config;
  const auto generation = nlohmann::json::parse(files.at("generation_config.json"));
  EXPECT_FALSE(generation.contains("bos_token_id"));  // unknown: HF leaves them out too
  EXPECT_FALSE(generation.contains("pad_token_id"));
}

TEST(TokenizerFits, AcceptsTheVocabularyPaddingOfRealModels) {
  // {tokenizer ids, model vocab_size}: DeepSeek-V3, DeepSeek-V2(-Lite), Qwen2.5-7B, Qwen3, Llama-3,
  // the tiny-zero model, this repository's fixture models, OLMo's 50280 in 50304.
  for (const auto& pair : std::vector<std::pair<int64_t, int64_t>>{{128815, 129280},
                                                                   {100015, 102400},
                                                                   {151665, 152064},
                                                                   {151669, 151936},
                                                                   {128256, 128256},
                                                                   {262, 262},
                                                                   {3000, 3000},
                                                                   {50280, 50304},
                                                                   {262, 262 + 1024}}) {
    const int64_t ids = pair.first, vocab = pair.second;  // C++17: a lambda cannot capture a structured binding
    EXPECT_EQ(error_of([&] { check_tokenizer_fits(ids, "tok.json", vocab, "cfg.json"); }), "") << ids << " " << vocab;
  }
}

TEST(TokenizerFits, RefusesAnotherModelsTokenizerNamingBothFilesAndSizes) {
  // The tiny-zero tokenizer (262 ids) with a 3000-row model: ids 262.. decode to nothing.
  const std::string e = error_of([] { check_tokenizer_fits(262, "tz/tokenizer.json", 3000, "m/config.json"); });
  for (const char* part : {"m/config.json", "vocab_size 3000", "tz/tokenizer.json", "262 ids", "at most 1024"})
    EXPECT_NE(e.find(part), std::string::npos) << part << " in: " << e;
  // Just past the padding bound, and a tokenizer with more ids than the model has rows.
  EXPECT_NE(error_of([] { check_tokenizer_fits(262, "t", 262 + 1025, "c"); }), "");
  EXPECT_NE(error_of([] { check_tokenizer_fits(128815, "t", 128815 + 128815 / 16 + 1, "c"); }), "");
  const std::string more = error_of([] { check_tokenizer_fits(3000, "t.json", 262, "c.json"); });
  EXPECT_NE(more.find("every tokenizer id needs a row"), std::string::npos) << more;
  EXPECT_NE(more.find("vocab_size 262"), std::string::npos) << more;
}

}  // namespace
}  // namespace grpo
