// Held-out evaluation inside a run (train.eval_every): the rollout workers sample
// train.eval_samples completions of every held-out prompt at the current weights (temperature
// train.eval_temperature, the same seeds at every evaluation), the reward service scores them,
// and eval/eval.h summarises: pass1 is the accuracy, format_ok = the verdict's "format" component
// > 0. A pure function of its inputs but for the calls it makes on the pool and the client.
#pragma once
#include <cstdint>
#include <vector>

#include "eval/eval.h"
#include "reward/client.h"
#include "train/rollout_pool.h"
#include "train/run_config.h"
#include "train/sample_and_score.h"

namespace grpo {

// `version`: the weights the samples must come from (the rollout workers wait for them).
EvalSummary evaluate_heldout(const RunConfig& run, RolloutPool& rollouts, const reward::RewardClient& reward,
                             const std::vector<Prompt>& heldout, int64_t version);

}  // namespace grpo
