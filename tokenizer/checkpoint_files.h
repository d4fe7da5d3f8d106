// The tokenizer's side of a model checkpoint: the files a checkpoint directory carries so that it
// loads on its own (grpo eval/generate/rollout-server/distill, HF AutoTokenizer and
// AutoModelForCausalLM.from_pretrained), and the check that a tokenizer fits a model.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "tokenizer/tokenizer.h"

namespace grpo {

// Name in the checkpoint directory -> contents:
//  * tokenizer.json: a copy of tok.path();
//  * tokenizer_config.json: a copy of the one beside tok.path(), else a minimal one
//    ({"tokenizer_class": "PreTrainedTokenizerFast", bos_token, eos_token} as far as known);
//  * generation_config.json: bos_token_id, eos_token_id and pad_token_id (tokenizer_config.json's
//    pad_token) where the tokenizer knows them, as HF writes it.
// Writers put these into their staging directory with the weights, so a checkpoint is complete
// or absent. InputError naming the file when a source cannot be read. Thread-safe.
std::map<std::string, std::string> tokenizer_checkpoint_files(const Tokenizer& tok);

// The rule for pairing a tokenizer of `tokenizer_ids` ids (Tokenizer::vocab_size) with a model of
// `model_vocab` rows (embedding and lm_head): every tokenizer id must have a row
// (tokenizer_ids <= model_vocab), and the model may have at most max(1024, tokenizer_ids / 16) rows
// more — the padding HF models add (DeepSeek-V3: 128815
// ids in 129280 rows, Qwen2.5/3: ~151.7k in 151936 or 152064, DeepSeek-V2: 100015 in 102400,
// Llama-3: none). More is a different tokenizer (the tiny-zero one, 262 ids, with a 3000-row
// model generates ids that decode to nothing). Throws InputError naming `model_file` (its
// config.json), `tokenizer_file` and both sizes. Every command that pairs the two calls it.
void check_tokenizer_fits(int64_t tokenizer_ids, const std::string& tokenizer_file, int64_t model_vocab,
                          const std::string& model_file);

}  // namespace grpo
