// What `grpo train` (and `grpo learner --job grpo`) settle before a run starts: the resolved run
// config with every default, the --dry-run description of the run, and the check that a resumed
// run keeps its settings. Not thread-safe (Config is not).
#pragma once
#include <string>

#include "common/config.h"

namespace grpo {

// `config` (loaded with its overrides) with every default of the run's sections written in, as
// run_config_from and trainer_options_from_config read them (trainer.temperature stays unset when
// it is: it follows rollout.sampling.temperature); throws the InputErrors they throw, and
// check_run_inputs's for missing input files.
Config resolve_run_config(Config config);

// The --dry-run text of a resolved config: the config as YAML, then '#' lines with the run
// directory (a new run, or the checkpoint it resumes from), the model's parameters (counted from
// its safetensors headers; the weights are not loaded), the dataset sizes, and the sequences and
// generated tokens per step and in all. A dataset or model that cannot be read is an InputError.
std::string describe_run(const Config& resolved);

// A resumed run (run.out_dir holds checkpoints and the config.yaml of its start) must keep its
// settings: InputError with one "key: old -> new" line per changed key and the fix
// (--allow-config-change, or another run.out_dir); with `allow_change` the lines go to stderr as a
// warning instead. Keys that cannot change results may change freely: run.threads,
// trainer.threads, run.out_dir (the same directory, spelled otherwise), reward.address,
// rollout.addresses (where the services run) and train.steps (a run may be extended).
void check_resume_config(const Config& resolved, bool allow_change);

}  // namespace grpo
