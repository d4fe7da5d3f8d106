// One rank of an expert-parallel GRPO run (`grpo learner --job grpo`, a `grpo train` config):
// rendezvous from the RANK/WORLD_SIZE/MASTER_* environment (learner/distributed.h), then
// run_training (train/controller.h) with this rank's Distributed. run.threads unset or 0: the
// host's cores shared by its ranks (learner/launcher.h).
//
// Rank 0 returns the summary {steps_done, start_step, world_size, out_dir, all_to_all_bytes,
// first_eval_accuracy?, last_eval_accuracy?}; the other ranks return null. Not re-entrant.
#pragma once
#include <chrono>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "learner/distributed.h"

namespace grpo {

// Checks the run config (train/run_config.h, learner/trainer.h) as run_grpo_rank will read it; the
// launcher calls it once before any rank starts. Throws InputError naming the key.
void check_grpo_run_config(const Config& config);

nlohmann::json run_grpo_rank(const Config& config, const DistEnv& env, std::chrono::seconds collective_timeout,
                             std::chrono::seconds step_timeout, bool progress);

}  // namespace grpo
