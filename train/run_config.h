// The controller's sections of a run config (`grpo train CONFIG`): run, model, template, data,
// reward, rollout, train, one typed struct per section and one parser each (rollout.sampling and
// rollout.engine are rollout/options.h's). The `trainer:` section belongs to learner/trainer.h
// and `pretrain:` to learner/pretrain.h; each owner parses its own. configs/tiny-zero.yaml
// documents every key. Every error is an InputError naming the file and the dotted key. Plain
// values; pure functions.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "dataset/prompt_dataset.h"
#include "rollout/engine.h"

namespace grpo {

struct RunSection {  // run:
  std::string name = "run";
  std::string out_dir;  // default runs/<name>: checkpoints/, store/, metrics.jsonl, tb/, report.html, config.yaml
  uint64_t seed = 1;
  int threads = 0;           // intra-op threads of the learner and in-process rollouts; 0 = cores
  int keep_checkpoints = 3;  // newest checkpoints kept (the others are deleted)
  // cpu | cuda | cuda:N | auto (the default: cuda:0 when one is visible), resolved on reading
  // (model/device.h): where the learner and the in-process rollout workers compute.
  at::Device device = at::kCPU;
  bool device_auto = true;  // device came from `auto` (expert parallelism then stays on the CPU)
};

struct ModelSection {     // model:
  std::string path;       // HF checkpoint directory the policy starts from (required)
  std::string tokenizer;  // tokenizer.json or its directory; default: path
};

struct DataSection {        // data:
  PromptDatasetSpec train;  // required
  bool has_heldout = false;
  PromptDatasetSpec heldout;
};

struct RewardSection {          // reward:
  std::string config;           // reward YAML for the in-process server ("" = built-in defaults)
  std::string address;          // an external RewardService instead of the in-process one
  std::string verifier = "r1";  // default verifier of prompts that do not name one
  std::string options;          // JSON object text sent with every request ("" = none), e.g.
                                // {"format": {"prompt_opens_think": true}} for a composite
  int64_t timeout_ms = 60'000;
  int retries = 3;
  double outage_window_s = 120;  // an unreachable service is waited for (and retried) this long
};

struct RolloutSection {                // rollout:
  int workers = 1;                     // in-process workers when no addresses are given
  std::vector<std::string> addresses;  // external `grpo rollout-server`s
  std::string dtype = "fp32";  // fp32 | bf16 | fp8 (in-process workers; also what is sent); auto resolved on reading
  int64_t group_size = 8;
  rollout::GenerationParams sampling = default_sampling();  // temperature 1, top_p 1, top_k 0, 256 tokens
  rollout::EngineOptions engine = default_engine();         // in-process workers: 256 seqs, 4096 pages of 16
  int64_t timeout_ms = 600'000;
  int retries = 3;  // reassignments of a failed worker's prompts
  // MoE: the rollouts return the experts their routers chose (model/routes.h), kept with the group in
  // the store, and the trainer reports mismatch/expert_disagreement against its own routers' choice.
  // Always on with trainer.routing_replay: rollout (R3 replays them); costs 2 bytes per token per
  // MoE layer per routed expert on the wire and in the store.
  bool record_routes = false;

  static rollout::GenerationParams default_sampling();
  static rollout::EngineOptions default_engine();
};

struct TrainSection {  // train:
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

struct RunConfig {
  RunSection run;
  ModelSection model;
  std::string chat_template = "r1-zero";  // template: a built-in chat template name or a YAML file
  DataSection data;
  RewardSection reward;
  RolloutSection rollout;
  TrainSection train;
};

RunSection run_section_from_config(const Config& section);
ModelSection model_section_from_config(const Config& section);
DataSection data_section_from_config(const Config& section);
RewardSection reward_section_from_config(const Config& section);
RolloutSection rollout_section_from_config(const Config& section);
// `has_heldout`: whether data.heldout exists (eval_every > 0 needs it).
TrainSection train_section_from_config(const Config& section, bool has_heldout);

// Every section; unknown top-level keys are errors.
RunConfig run_config_from(const Config& config);

// The input files of a run exist: model.path (a directory with config.json), model.tokenizer
// (tokenizer.json or a directory holding one), data.train.path, data.heldout.path, reward.config
// and a template file. Every missing one is named in one InputError (the config's file, each key
// with its path as resolved, and the fix), before anything loads.
void check_run_inputs(const RunConfig& run, const std::string& source);

// The sections that sample (run, model, template, data, reward, rollout; train stays default), for
// other commands on a run config (`grpo distill`); `also_known` top-level keys are allowed.
RunConfig sampling_config_from(const Config& config, const std::set<std::string>& also_known);

}  // namespace grpo
