// The controller's sections of a run config (`grpo train CONFIG`): run, model, template, data,
// reward, rollout, train. The `trainer:` section belongs to learner/trainer.h and `pretrain:` to
// learner/pretrain.h; each owner parses its own. configs/tiny-zero.yaml documents every key.
// Every error is an InputError naming the file and the dotted key.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "dataset/prompt_dataset.h"

namespace grpo {

struct RunConfig {
  // run:
  std::string name = "run";
  std::string out_dir;  // checkpoints/, store/, metrics.jsonl, tb/, report.html, config.yaml
  uint64_t seed = 1;
  int threads = 0;           // intra-op threads of the learner and in-process rollouts; 0 = cores
  int keep_checkpoints = 3;  // newest checkpoints kept (the others are deleted)
  // model:
  std::string model_path;      // HF checkpoint directory the policy starts from
  std::string tokenizer_path;  // tokenizer.json or its directory; default: model_path
  // template: a built-in chat template name or a YAML file
  std::string chat_template = "r1-zero";
  // data:
  PromptDatasetSpec train_data;
  bool has_heldout = false;
  PromptDatasetSpec heldout_data;
  // reward:
  std::string reward_config;     // reward YAML for the in-process server ("" = built-in defaults)
  std::string reward_address;    // an external RewardService instead of the in-process one
  std::string verifier = "r1";   // default verifier of prompts that do not name one
  std::string verifier_options;  // JSON object text sent with every request ("" = none), e.g.
                                 // {"format": {"prompt_opens_think": true}} for a composite
  int64_t reward_timeout_ms = 60'000;
  int reward_retries = 3;
  // rollout:
  int rollout_workers = 1;                     // in-process workers when no addresses are given
  std::vector<std::string> rollout_addresses;  // external `grpo rollout-server`s
  std::string rollout_dtype = "fp32";          // fp32 | bf16 | fp8 (in-process workers; also what is sent)
  int64_t group_size = 8;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0;
  int64_t max_new_tokens = 256;
  int64_t engine_max_seqs = 256, engine_num_pages = 4096, engine_page_size = 16, engine_max_batched_tokens = 4096;
  int64_t rollout_timeout_ms = 600'000;
  int rollout_retries = 3;  // reassignments of a failed worker's prompts
  // train:
  int64_t steps = 10;
  int64_t prompts_per_step = 8;
  bool dynamic_sampling = false;  // keep only groups whose rewards differ, refill by over-sampling
  int max_refill_rounds = 3;
  int64_t max_staleness = 0;      // async: rollouts for step n may use weights of step n - max_staleness
  int64_t eval_every = 0;         // held-out evaluation every N steps (and at the start and end); 0 = never
  int64_t eval_samples = 1;       // samples per held-out prompt
  double eval_temperature = 0.0;  // 0 = greedy
  int64_t eval_limit = 0;         // held-out prompts used (0 = all)
  int64_t checkpoint_every = 1;   // steps between checkpoints (and the last step)
};

// Reads every section above from `config` (unknown keys in them are errors; other top-level
// sections are left to their owners). `out_dir` defaults to runs/<name>.
RunConfig run_config_from(const Config& config);

// Only the sections a command that samples from a checkpoint shares with `grpo train` (run, model,
// template, data, reward, rollout; the train: fields keep their defaults), e.g. `grpo distill`.
// Top-level sections other than these and `also_known` are errors.
RunConfig sampling_config_from(const Config& config, const std::set<std::string>& also_known);

}  // namespace grpo
