// `grpo distill CONFIG [key.path=value ...]`: rejection-sampled distillation data (DeepSeek-R1
// §2.3.3: sample many answers from a strong checkpoint, keep the correct and readable ones, train a
// student on them with SFT).
//
// Two sources of samples:
//  * sample (default): the teacher checkpoint (model.path) writes N = rollout.group_size
//    completions for every prompt of data.train, scored by the RewardService. The config's run,
//    model, template, data, reward and rollout sections are `grpo train`'s (train/run_config.h;
//    a train config plus a distill: section works as is): in-process reward and rollout servers on
//    loopback unless addresses are given, prompt i seeded with group_seed(run.seed, 0, its id).
//    Dataset rows that cannot be used (no answer, bad JSON, ...) are skipped and counted: the
//    loader runs with skip_bad.
//  * harvest (distill.harvest.store): the scored groups already in a training run's experience
//    store (opened read-only; corrupt records skipped and counted); groups of the same prompt id
//    are merged in store order. `template` must be the run's (it recovers the user message from
//    the stored prompt text); model.path is needed only for top-k log-probs.
//
// Every sample goes through the filters of distill/filters.h; the accepted ones are
// written as described in distill/export.h, with dataset_card.{json,md}
// (distill/card.h) beside them, all in distill.out (default <run.out_dir>/distill).
// Groups without a reference answer, and stored prompt texts that the template did not make, are
// skipped and counted.
//
// Resume (sample mode): every prompt's scored group is put into the RocksDB experience store
// distill.out/store (store/experience_store.h, key step = the prompt's index in the dataset)
// before the next batch of prompts is sampled, batch_prompts prompts at a time in dataset order,
// each batch in one atomic write. A run started again with the same config (after kill -9 too)
// samples only the prompts the store does not have, in the same batches, so its export equals an
// uninterrupted run's. The export is made from the store alone: export_only (`--export-only`)
// rewrites the files without sampling (e.g. with other filters or top-k settings).
//
// Empty result (no sample accepted): the files are still written (the JSONL files empty, the card
// saying EMPTY) and the summary says so; `grpo distill` then exits with status 3.
//
// The distill: section (every key optional):
//   out: DIR                   output directory (default <run.out_dir>/distill)
//   batch_prompts: 16          prompts sampled, scored and stored together
//   per_prompt_cap: 0          accepted samples kept per prompt at most (0 = all)
//   topk_logprobs: 0           k > 0: the teacher's top-k log-probs per completion token
//   topk_batch: 8              sequences per teacher forward pass
//   routes: false              true: export each sample's routes (the experts its rollout's MoE
//                              routers chose; distill/export.h); sample mode asks the rollouts to
//                              record them, and a sample without them is an error
//   filters: {correct_only: true, min_reward: -.inf, drop_truncated: true, max_tokens: 0,
//             require_format: true, answer_tags: false, language: en, min_language_share: 0,
//             max_repetition: 1.0, repetition_ngram: 4, dedupe: true}
//   harvest: {store: DIR}      take the groups from this experience store instead of sampling
#pragma once
#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/stop_signals.h"
#include "distill/card.h"
#include "distill/filters.h"
#include "train/run_config.h"

namespace grpo {

struct DistillOptions {
  // Sample mode: the shared sections. Harvest mode: only name/out_dir/threads, model_path (may
  // be empty) and chat_template are read.
  RunConfig run;
  std::string out_dir;
  std::string harvest_store;  // "" = sample from run.model_path
  int64_t batch_prompts = 16;
  int64_t topk_logprobs = 0;
  int64_t topk_batch = 8;
  bool routes = false;  // export the routes (and, sampling, ask the rollouts for them)
  DistillFilters filters;

  // InputError naming the key for unknown keys and out-of-range values.
  static DistillOptions from_config(const Config& config);
};

struct DistillRun {
  bool export_only = false;  // sample mode: no sampling, the export from the store as it is
  bool progress = true;      // progress lines on stderr
  std::string command_line;  // for the card
  // Sample mode: once it has received a signal, sampling ends after the current batch and nothing
  // is exported (stopped_by is set); the store keeps every sampled prompt for the resume.
  const StopSignals* stop = nullptr;
};

struct DistillSummary {
  std::string out_dir;
  DistillCounts counts;
  int64_t sampled_now = 0;  // prompts sampled by this run (the others were in the store)
  bool empty = false;       // no sample accepted
  int stopped_by = 0;       // the signal that stopped sampling (0: none; then nothing was exported)
};

DistillSummary run_distill(const Config& config, const DistillRun& how);

}  // namespace grpo
