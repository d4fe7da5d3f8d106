#include "train/run_plan.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common/config_diff.h"
#include "common/error.h"
#include "dataset/prompt_dataset.h"
#include "learner/trainer_options.h"
#include "model/checkpoint.h"
#include "train/checkpoints.h"
#include "train/run_config.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

// Parameters stored in a checkpoint (FP8 block scales not counted), from the mapped files.
int64_t stored_parameters(const std::string& dir) {
  int64_t n = 0;
  for (const auto& [name, t] : load_checkpoint_raw(dir))
    if (name.size() < 10 || name.compare(name.size() - 10, 10, "_scale_inv") != 0) n += t.data.numel();
  return n;
}

// `config` with the defaults of the run's sections written in.
Config with_defaults(Config config) {
  const bool trainer_temperature = config.has("trainer.temperature");
  config.record_defaults();
  run_config_from(config);
  trainer_options_from_config(config.sub("trainer"));
  // Left out, it follows rollout.sampling.temperature (train/controller.h): it stays out.
  if (!trainer_temperature) {
    YAML::Node trainer = config.node()["trainer"];
    trainer.remove("temperature");
  }
  config.record_defaults(false);  // the run reads it as it is now
  return config;
}

}  // namespace

Config resolve_run_config(Config config) {
  config = with_defaults(std::move(config));
  check_run_inputs(run_config_from(config), config.source());
  return config;
}

std::string describe_run(const Config& resolved) {
  const RunConfig r = run_config_from(resolved);
  std::ostringstream o;
  o << resolved.dump() << "\n";
  const auto checkpoints = list_checkpoints(fs::path(r.run.out_dir) / "checkpoints");
  o << "# run directory: " << r.run.out_dir
    << (checkpoints.empty() ? " (a new run)"
                            : " (resumes from checkpoint step " + std::to_string(checkpoints.back().first) + ")")
    << "\n";
  o << "# model: " << r.model.path << ": " << stored_parameters(r.model.path) << " parameters\n";
  o << "# data.train: " << load_prompt_dataset(r.data.train).size() << " prompts\n";
  if (r.data.has_heldout) {
    int64_t heldout = static_cast<int64_t>(load_prompt_dataset(r.data.heldout).size());
    if (r.train.eval_limit > 0) heldout = std::min(heldout, r.train.eval_limit);
    o << "# data.heldout: " << heldout << " prompts evaluated\n";
  }
  const int64_t sequences = r.train.prompts_per_step * r.rollout.group_size;
  const int64_t tokens = sequences * r.rollout.sampling.max_new_tokens;
  o << "# per step: " << r.train.prompts_per_step << " prompts x " << r.rollout.group_size << " = " << sequences
    << " sequences, at most " << tokens << " generated tokens" << (r.train.dynamic_sampling ? " (before refills)" : "")
    << "\n";
  o << "# in all: " << r.train.steps << " steps, " << r.train.steps * sequences << " sequences, at most "
    << r.train.steps * tokens << " generated tokens\n";
  return o.str();
}

void check_resume_config(const Config& resolved, bool allow_change) {
  const std::string out_dir = resolved.get<std::string>("run.out_dir");
  const fs::path saved = fs::path(out_dir) / "config.yaml";
  if (list_checkpoints(fs::path(out_dir) / "checkpoints").empty() || !fs::exists(saved)) return;
  const std::vector<std::string> changes =
      config_differences(with_defaults(Config::load(saved.string())), resolved,
                         {"run.threads", "trainer.threads", "run.out_dir", "reward.address", "rollout.addresses",
                          "train.steps", "http.address"});
  if (changes.empty()) return;
  std::string lines;
  for (const auto& c : changes) lines += "\n  " + c;
  if (allow_change) {
    std::cerr << "warning: resuming " << out_dir << " with changed settings (--allow-config-change):" << lines
              << std::endl;
    return;
  }
  throw InputError(out_dir + " is a run started with other settings (" + saved.string() + "):" + lines +
                   "\nresume with the same settings, pass --allow-config-change, or set another run.out_dir");
}

}  // namespace grpo
