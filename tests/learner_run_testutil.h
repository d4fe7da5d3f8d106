// The inputs of a GRPO run for the loop's end-to-end tests (`grpo train`, `grpo learner --job grpo`).
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include "model/init.h"
#include "model/pretrained.h"
#include "model_test_util.h"

namespace grpo::testing {

// ROOT/model: a tiny random DeepSeek-V3 (8 routed experts) with the bpe-tokenizer vocabulary;
// ROOT/train.jsonl: 12 prompts "What is i + i?" with their answers.
inline void write_tiny_run_inputs(const std::filesystem::path& root) {
  DeepseekModel m(tiny_config({{"vocab_size", 3000}, {"initializer_range", 0.02}}));
  init_weights(m, 5);
  save_pretrained(m, (root / "model").string());
  std::filesystem::copy_file(std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/tokenizer.json",
                             root / "model" / "tokenizer.json");
  std::ofstream data(root / "train.jsonl");
  for (int i = 0; i < 12; ++i)
    data << "{\"id\": \"q" << i << "\", \"prompt\": \"What is " << i << " + " << i << "?\", \"answer\": \"" << 2 * i
         << "\"}\n";
}

}  // namespace grpo::testing
