// --dry-run of the next-token trainers (`grpo pretrain`, `grpo sft`, `grpo learner` pretraining):
// the config as given (with the overrides), then what a step costs and where the run goes.
#pragma once
#include <cstdint>
#include <string>

#include "common/config.h"
#include "learner/lm_training.h"

namespace grpo {

// `steps`: the run's length; "" when it follows from the data (sft by epochs).
inline std::string describe_lm_run(const Config& config, const LmTrainingOptions& o, const std::string& steps) {
  const int64_t tokens = o.batch_size * o.seq_len;
  return config.dump() + "\n# per step: " + std::to_string(o.batch_size) + " sequences x " + std::to_string(o.seq_len) +
         " tokens = " + std::to_string(tokens) +
         " tokens at most\n# steps: " + (steps.empty() ? "from the data's epochs" : steps) +
         "\n# run directory: " + o.out_dir + " (metrics: " + o.log_dir + ")\n";
}

}  // namespace grpo
