// Pretraining (`grpo pretrain`): next-token cross-entropy on a text corpus with AdamW, from a
// random initialisation of a DeepSeek V2/V3 config.json, saved as an HF checkpoint with its
// tokenizer. It makes the demo's base model from a synthetic task (learner/digit_chains.h) and
// trains students on JSONL/text corpora (distillation).
//
// The run config's `pretrain:` section (every key optional unless marked):
//   model:       a config.json path, or the config.json object inline              (required)
//   tokenizer:   tokenizer.json or its directory; tokenizer_config.json beside it
//                is copied too                                                       (required)
//   corpus:      exactly one source                                                  (required)
//     task: digit_chains        the synthetic task's train split, rendered as
//                               BOS + template(prompt) + solution + EOS
//       template:               chat template (built-in name or YAML file)         (required)
//       step_fraction: 0.15     share of chat texts with step-by-step solutions (the rest direct)
//       worked_fraction: 0      share of texts that are bare worked examples instead of chats
//                               (BOS + "7 5 3\n7 2 1" + EOS: the step skill without the preference)
//       digit_chains: {...}     DigitChainsOptions (min_terms, max_terms, ...)
//     files: [a.jsonl, ...]     records, each trained as BOS + text + EOS, reshuffled every epoch
//       format: jsonl           jsonl (one object a line) or text (one record a non-empty line)
//       field: text             the JSONL member holding the text
//   seq_len: 128                tokens a sequence may have (longer records are cut, and counted)
//   steps: 1000
//   bias_update_speed: 0.001    aux-loss-free balancing step γ of noaux_tc routers (0: off)
//   mtp_weight: 0.3             λ of the multi-token-prediction loss (DeepSeek-V3 §2.2: λ/D times the
//                               sum of the D depths' cross-entropies, added to the next-token loss)
//                               when the model config has num_nextn_predict_layers > 0; the MTP
//                               modules are trained and saved (the rollout engine drafts with
//                               them). 0: the model is built and saved without them. One process only
//   batch_size, optim, threads, seed, dtype, save_dtype, out_dir, log_dir, log_every: the keys
//   every LM trainer has (learner/lm_training.h)
//   save_every: 0               `grpo learner` only: a checkpoint every N steps (0: at the end only)
//   resume: false               `grpo learner` only: continue from out_dir's checkpoint when it has
//                               one (same world size and zero1), else start fresh
//   zero1: false                `grpo learner` only: shard the AdamW moments of the replicated
//                               parameters over the ranks (ZeRO-1, learner/zero1.h)
//
// Errors (unknown keys, wrong types, missing keys, unreadable files, a vocabulary smaller than
// the tokenizer's) are InputErrors naming the file and key before any training starts.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/stop_signals.h"
#include "learner/digit_chains.h"
#include "learner/distributed.h"
#include "learner/lm_training.h"
#include "model/deepseek.h"

namespace grpo {

struct PretrainCorpusOptions {
  std::string task;  // "digit_chains", or empty when `files` are the source
  DigitChainsOptions digit_chains;
  double step_fraction = 0.15;
  double worked_fraction = 0.0;
  std::string chat_template;
  std::vector<std::string> files;
  std::string format = "jsonl";
  std::string field = "text";
};

struct PretrainOptions {
  nlohmann::json model;      // the HF config.json object
  std::string model_source;  // its file, or the config key it was written under
  std::string tokenizer;
  PretrainCorpusOptions corpus;
  int64_t steps = 1000;
  double bias_update_speed = 1e-3;
  double mtp_weight = 0.3;
  int64_t save_every = 0;
  bool resume = false;
  bool zero1 = false;
  LmTrainingOptions train;  // seq_len, batch_size, optim, dtype, out_dir, ...

  // From the `pretrain:` section (config.sub("pretrain")).
  static PretrainOptions from_config(const Config& section);
};

struct PretrainResult {
  int64_t steps = 0;
  double first_loss = 0, final_loss = 0;       // mean token loss of the first and the last step
  double seconds = 0;                          // training wall time (without loading and saving)
  int64_t tokens = 0;                          // target tokens trained on
  int64_t truncated = 0;                       // sequences cut to seq_len
  std::vector<int64_t> optimizer_state_bytes;  // per rank: bytes of its AdamW moments
  int stopped_by = 0;                          // the signal that ended training early (0: none)
};

// Trains and saves options.out_dir (config.json, model.safetensors, tokenizer files) atomically;
// metrics go to options.log_dir (metrics/metrics.h): loss, lr, grad_norm, tokens/s and, per MoE
// layer, moe/layerN/load_max_over_mean (the batch's expert load balance, 1 = even). With
// `show_progress`, a progress line on stderr.
//
// With `dist` (`grpo learner`), one rank of an expert-parallel run (learner/expert_parallel.h):
// every rank draws the same global batch and trains on its batch_size / world rows; rank 0 shows
// progress and writes metrics; the checkpoint is written sharded by rank with each rank's
// optimizer state and learner_state.json (learner/sharded_checkpoint.h), every save_every steps
// and at the end. With zero1, each rank keeps (and saves) the AdamW moments of its range of the
// replicated parameters only (learner/zero1.h). The returned figures are global (losses averaged
// over all ranks' tokens).
//
// `after_step`, when given, runs on every rank after each step's update (and bias update), with
// the steps done so far and the model (a collective if it communicates: every rank calls it at
// every step); what it returns is logged with that step's metrics (a metrics line is written
// for that step even between log_every steps when it returns anything). `grpo learner` publishes the
// weights to rollout workers with it (train/ep_publisher.h).
//
// `stop` (one process only, null: none): once it has received a signal, training ends after the
// current step, the model of that step is saved and stopped_by is set.
using PretrainStepHook = std::function<std::map<std::string, double>(int64_t steps_done, const DeepseekModel& model)>;
PretrainResult pretrain(const PretrainOptions& options, bool show_progress = true, Distributed* dist = nullptr,
                        const PretrainStepHook& after_step = {}, const StopSignals* stop = nullptr);

// One rank of `grpo learner`'s pretraining job: rendezvous (collective_timeout), threads =
// options.train.threads or the host's cores shared by its ranks (learner/launcher.h), then
// pretrain with the hook make_hook(dist) returns (empty: none). Rank 0 returns the summary
// {steps, first_loss, final_loss, seconds, tokens, world_size, all_to_all_bytes, out_dir,
// optimizer_state_bytes}; the other ranks null.
nlohmann::json pretrain_rank(const PretrainOptions& options, const DistEnv& env,
                             std::chrono::seconds collective_timeout, bool show_progress,
                             const std::function<PretrainStepHook(Distributed&)>& make_hook = {});

}  // namespace grpo
