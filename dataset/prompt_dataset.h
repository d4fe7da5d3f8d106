// Prompt datasets: JSONL files (optionally gzip-compressed, `.gz`) or Parquet files (`.parquet`,
// the format of Hugging Face datasets and verl's data; each row read as a JSON object of its
// columns, see dataset/parquet/parquet_rows.h) turned into prompts plus the reference a verifier
// checks the answers against. A path that is no file but names a Hugging Face Hub dataset
// ("openai/gsm8k", "hf://datasets/...") is an InputError with the command that downloads it.
//
// Formats (adapters over the public files' own fields; field defaults in brackets):
//   jsonl      generic [prompt, answer, id]; the answer may be a string, a number, or a JSON
//              object/array (then reference_is_json = true, e.g. code tests)
//   gsm8k      [question, answer]: the reference is the text after the last "#### ", commas removed
//   math       [problem, solution, id]: the reference is the last \boxed{...} of the solution (MATH)
//   math500    [problem, expected_answer (else answer), id]
//   aime       [problem, answer, id]: zero-padded answers lose their leading zeros ("033" -> "33")
//   amc23      [problem, answer, id]: numeric answers print without a trailing ".0" (27.0 -> "27")
//   humaneval  [prompt, test + entry_point, task_id]: the prompt asks for the whole function in a
//              ```python block; reference {"test", "entry_point"} (reward/code/verifier.h), verifier "code"
//   mbpp       [text, test_list (+ test_setup_code), task_id]: the prompt lists the tests (as in the
//              MBPP paper); reference {"language": "python", "tests", "setup"}, verifier "code"
//   verl       [prompt, reward_model, id]: the prompt is a string or a list of chat messages (the last
//              "user" message's content); the reference is reward_model.ground_truth (or the
//              field's plain value); with no id field the id is "<data_source>:<extra_info.index>"
// Numbers are printed as integers when integral. An id that is absent is "<file>:<line>" (Parquet:
// "<file>:row <n>").
//
// Bad rows (not JSON, not an object, a missing or ill-typed field, an empty prompt or answer, a
// duplicate id, a line over max_line_bytes) are an InputError naming "file:line" and the field,
// or, with skip_bad, are skipped and counted in PromptDatasetReport. Blank lines are ignored.
// Shuffling (seeded, the same order on every platform) happens before `limit` is applied.
//
// Config section (e.g. a run config's data.train / data.heldout), every key optional but path
// (a relative path is relative to the working directory, like every path of a run config):
//   {path, format: jsonl, prompt_field, answer_field, id_field, verifier, limit: 0 (= all),
//    shuffle: false, seed: 0, skip_bad: false, max_line_bytes: 4194304}
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace grpo {

struct PromptItem {
  std::string id;                  // from the id field, else "<file>:<line>"
  std::string prompt;              // the user message (the chat template is applied by the caller)
  std::string reference;           // what the verifier checks against: a plain answer ("42"), or JSON
  bool reference_is_json = false;  // e.g. code tests {"tests": [...]} (reward/code/verifier.h)
  std::string verifier;            // "" = the run's default verifier; code formats set "code"
};

struct PromptDatasetSpec {
  std::string path;
  std::string format = "jsonl";  // jsonl | gsm8k | math | math500 | aime | amc23 | humaneval | mbpp | verl
  std::string prompt_field;      // "" = the format's default (see above)
  std::string answer_field;      // "" = the format's default
  std::string id_field;          // "" = the format's default
  std::string verifier;          // "" = the format's choice; else set on every item
  int64_t limit = 0;             // keep the first `limit` items (after shuffling); 0 = all
  bool shuffle = false;
  uint64_t seed = 0;      // shuffle seed
  bool skip_bad = false;  // skip and count bad rows instead of failing
  int64_t max_line_bytes = 4 << 20;
};

// What a load skipped (only with skip_bad).
struct PromptDatasetReport {
  int64_t rows = 0;  // non-blank lines read
  int64_t skipped = 0;
  int64_t missing_answer = 0;        // of the skipped: rows whose answer field is absent, null or blank
  std::vector<std::string> reasons;  // the first few skipped rows' errors ("file:line: ...")
};

// The known format names, in the order listed above.
const std::vector<std::string>& prompt_dataset_formats();

// Reads a config section; unknown keys, a missing path, an unknown format or a negative limit are
// InputErrors naming the key.
PromptDatasetSpec prompt_dataset_spec_from_config(const Config& section);

// Loads the whole file. Throws InputError for an unreadable file, a bad row (unless skip_bad) or a
// dataset with no usable row. With skip_bad and no `report`, skipped rows are summarised on stderr.
std::vector<PromptItem> load_prompt_dataset(const PromptDatasetSpec& spec, PromptDatasetReport* report = nullptr);

}  // namespace grpo
