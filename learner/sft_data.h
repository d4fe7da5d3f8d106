// Supervised fine-tuning data (`grpo sft`, learner/sft.h): JSONL records, one per line, as the
// distillation export writes them (issue 7):
//
//   {"messages": [{"role": "system", "content": ...},        (optional, first only)
//                 {"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...]}
//       the last message is the answer trained on; everything before it is the prompt, rendered
//       with the chat template and its generation prompt: render(messages[:-1], true).
//   {"prompt": "text", "completion": "text"}
//       the prompt is used as it is (already rendered; no template), the completion trained on.
//
// Tokens: [BOS] + encode(prompt) + encode(answer + template.assistant_suffix) + [EOS] (BOS / EOS
// when the tokenizer has them). Only the answer tokens and the EOS are targets (loss mask).
//
// Optional logit distillation, per record:
//   "teacher": {"token_ids": [T ids], "topk_ids": [[k ids] × T], "topk_logprobs": [[k floats] × T]}
// token_ids are the completion's tokens under the teacher's tokenizer: they must equal the
// student's answer tokens, with or without the final EOS (else the record is bad: distillation
// needs the same tokenizer). Entry t of topk_* is the teacher's top-k at completion token t.
//
// Bad records (invalid JSON, missing or mistyped fields, unknown or misplaced roles, a prompt
// without an answer, an empty answer, teacher arrays of the wrong length, ids outside the
// vocabulary) are InputErrors "FILE:LINE: FIELD: what", or skipped and counted with skip_bad.
// Longer than seq_len: cut to seq_len (counted) or skipped (counted); a record whose prompt alone
// fills seq_len is skipped and counted either way. No usable record at all is an InputError.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace grpo {

struct SftDataOptions {
  std::vector<std::string> files;
  int64_t seq_len = 128;
  bool skip_bad = false;
  bool truncate = true;  // overlong examples: cut to seq_len (true) or skip (false)
};

struct SftExample {
  std::vector<int64_t> ids;  // the whole sequence, at most seq_len tokens
  int64_t prompt_len = 0;    // ids[prompt_len..] are targets
  // Teacher top-k of targets ids[prompt_len + t], t < topk_ids.size() (empty: no teacher).
  std::vector<std::vector<int64_t>> topk_ids;
  std::vector<std::vector<float>> topk_logprobs;
};

struct SftDataReport {
  int64_t lines = 0;                      // non-blank lines read
  int64_t examples = 0;                   // examples kept
  int64_t with_teacher = 0;               // of those, with teacher top-k
  int64_t bad = 0;                        // skipped bad records (skip_bad)
  int64_t truncated = 0;                  // cut to seq_len
  int64_t overlong = 0;                   // skipped: longer than seq_len (truncate off), or no answer token fits
  std::vector<std::string> bad_examples;  // the first few bad-record messages
};

// One record -> example. `where` ("FILE:LINE") starts every InputError. Returns false (and
// counts it in `report`) when the example does not fit seq_len under the options.
bool sft_example(const nlohmann::json& record, const Tokenizer& tok, const ChatTemplate& tmpl,
                 const SftDataOptions& options, const std::string& where, SftExample* out, SftDataReport* report);

// Every record of every file, in order.
std::vector<SftExample> load_sft_data(const SftDataOptions& options, const Tokenizer& tok, const ChatTemplate& tmpl,
                                      SftDataReport* report);

}  // namespace grpo
