// The tokenizer of a model checkpoint, for every command that pairs the two (eval, generate,
// rollout-server, train and distill's rollout workers): `--tokenizer`/model.tokenizer when given,
// else the checkpoint's own tokenizer.json (every checkpoint grpo writes carries one,
// tokenizer/checkpoint_files.h), checked against the model's config.json vocab_size with
// check_tokenizer_fits.
#pragma once
#include <optional>
#include <string>

#include "tokenizer/tokenizer.h"

namespace grpo {

// `tokenizer`: a tokenizer.json or its directory, "" = model_dir's own. Returns nullopt when
// `tokenizer` is "", model_dir has no tokenizer.json and !required. Throws InputError when
// required and there is none ("pass --tokenizer"), for a bad tokenizer or config.json, and when
// they do not fit (naming both files and sizes). Thread-safe.
std::optional<Tokenizer> load_model_tokenizer(const std::string& model_dir, const std::string& tokenizer,
                                              bool required);

}  // namespace grpo
