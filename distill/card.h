// The dataset card of a `grpo distill` export: dataset_card.json (machine-readable) and
// dataset_card.md (the same facts for people). What a reader of a distillation set needs to trust
// it: how many samples each filter removed, what was skipped and why, where the prompts came from
// (with digests), which teacher (sha256 of its safetensors) and how it sampled.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo {

struct DistillCounts {
  int64_t prompts = 0;          // usable prompts in the source (dataset items; prompt ids in a harvested store)
  int64_t prompts_sampled = 0;  // prompts whose samples were read back for the export
  int64_t samples = 0;          // completions the filters looked at
  int64_t accepted = 0;
  std::map<std::string, int64_t> rejected;  // filter name -> samples it rejected first (every filter listed)
  int64_t prompts_with_zero_accepted = 0;
  int64_t corrupt_records = 0;  // store records that could not be decoded (skipped)
  std::vector<std::string> corrupt_examples;
  int64_t dataset_rows_skipped = 0;  // bad dataset rows (all kinds, missing answers included)
  std::vector<std::string> dataset_skip_examples;
  int64_t prompts_without_answers = 0;  // dataset rows or stored groups with no reference answer
  int64_t prompts_not_in_template = 0;  // harvest: stored prompt text not made by the template
  int64_t reward_errors = 0;            // samples whose verification failed (scored 0: incorrect)
};

nlohmann::ordered_json counts_json(const DistillCounts& c);

// SHA-256 of a file's bytes, lower-case hex. InputError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

// {"path", "bytes", "sha256"} of a file.
nlohmann::ordered_json file_digest(const std::string& path);

// A checkpoint directory's identity: {"path", "sha256", "files": [{"name", "bytes", "sha256"}]} over
// its *.safetensors files (sorted by name); "sha256" is the file's digest when there is one file,
// else the digest of the lines "NAME SHA256\n" of all of them.
nlohmann::ordered_json checkpoint_digest(const std::string& dir);

// dataset_card.md from the card's JSON (the keys run_distill writes).
std::string card_markdown(const nlohmann::ordered_json& card);

}  // namespace grpo
