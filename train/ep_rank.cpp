#include "train/ep_rank.h"

#include "learner/launcher.h"
#include "learner/trainer.h"
#include "train/controller.h"
#include "train/run_config.h"

namespace grpo {

void check_grpo_run_config(const Config& config) {
  run_config_from(config);
  trainer_options_from_config(config.sub("trainer"));
}

nlohmann::json run_grpo_rank(const Config& config, const DistEnv& env, std::chrono::seconds collective_timeout,
                             std::chrono::seconds step_timeout, bool progress) {
  Config run = config;
  if (run.get<int>("run.threads", 0) <= 0)  // unset: the cores shared by this host's ranks
    run.apply_override("run.threads=" + std::to_string(threads_per_rank()));
  Distributed dist(env, collective_timeout);
  const TrainSummary s = run_training(run, progress, {&dist, step_timeout});
  if (env.rank != 0) return nullptr;
  nlohmann::json summary = {{"steps_done", s.steps_done},
                            {"start_step", s.start_step},
                            {"steps_trained_no_group", s.steps_trained_no_group},
                            {"world_size", env.world_size},
                            {"out_dir", s.out_dir},
                            {"all_to_all_bytes", dist.all_to_all_bytes()}};
  if (s.first_eval_accuracy >= 0) summary["first_eval_accuracy"] = s.first_eval_accuracy;
  if (s.last_eval_accuracy >= 0) summary["last_eval_accuracy"] = s.last_eval_accuracy;
  return summary;
}

}  // namespace grpo
