// Prompts as token ids, from the forms the commands accept (`grpo generate`, `grpo logprobs`).
// Pure functions (read_prompt_file reads its file, or stdin for "-").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace grpo::rollout {

// "1,2,3" -> {1, 2, 3}; InputError naming --`option` for an empty list or a non-integer item.
std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option);

// The tokenizer's BOS (when `bos` and it has one), then text's ids.
std::vector<int64_t> encode_prompt(const Tokenizer& tok, const std::string& text, bool bos);

// One prompt per non-blank JSONL line: {"prompt": "text"}, {"text": "..."} (as `grpo
// chat-template` writes them; need `tok`) or {"prompt_ids": [ids]}. "-" reads stdin. Errors are
// InputErrors naming "--prompts FILE, line N".
std::vector<std::vector<int64_t>> read_prompt_file(const std::string& path, const Tokenizer* tok, bool bos);

}  // namespace grpo::rollout
