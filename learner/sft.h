// Supervised fine-tuning (`grpo sft`): a dense student (model/dense_decoder.h) trained on chat or
// prompt/completion JSONL (learner/sft_data.h) with cross-entropy on the answer tokens, plus
// kd_weight × the top-k logit-distillation KL (learner/distill_loss.h) on records that carry the
// teacher's top-k. The checkpoint is an HF directory (config.json, model.safetensors, tokenizer
// files) written atomically at the end and every save_every steps.
//
// The run config's `sft:` section:
//   model:      a checkpoint directory (config.json + safetensors: training starts from it), or a
//               config.json path / directory / inline object (random init with `seed`)  (required)
//               model_type llama or qwen2
//   tokenizer:  tokenizer.json or its directory (default: the model checkpoint directory)
//   template:   chat template for "messages" records (built-in name or YAML file; default r1-zero)
//   data:       files: [a.jsonl, ...] (required)   skip_bad: false   overlong: truncate | skip
//   kd_weight: 1.0              weight of the distillation KL (records with "teacher" only)
//   steps: N  or  epochs: E     (exactly one; default epochs: 1) optimizer steps of batch_size
//                               examples, reshuffled every epoch
//   save_every: 0               steps between checkpoints (0: only at the end)
//   seq_len, batch_size, optim, threads, seed, dtype, save_dtype, out_dir, log_dir, log_every:
//   as every LM trainer (learner/lm_training.h)
//
// Every input problem (unknown keys, wrong types, unreadable files, bad records without skip_bad,
// no usable record, a model vocabulary smaller than the tokenizer's) is an InputError naming the
// file and key or line before training starts.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/stop_signals.h"
#include "learner/lm_training.h"
#include "learner/sft_data.h"

namespace grpo {

struct SftOptions {
  nlohmann::json model_config;  // when starting from a random init
  std::string model_source;     // its file or key, for errors
  std::string checkpoint;       // when starting from a checkpoint directory
  std::string tokenizer, chat_template = "r1-zero";
  SftDataOptions data;
  double kd_weight = 1.0;
  int64_t steps = 0;  // 0: from epochs
  double epochs = 1.0;
  int64_t save_every = 0;
  LmTrainingOptions train;

  static SftOptions from_config(const Config& section);  // the `sft:` section
};

struct SftResult {
  int64_t steps = 0;
  double first_loss = 0, final_loss = 0;  // the total loss of the first and the last step
  double final_ce = 0, final_kd = 0;      // the last step's parts
  double seconds = 0;
  int64_t tokens = 0;  // answer tokens trained on
  SftDataReport data;
  int stopped_by = 0;  // the signal that ended training before its last step (0: none)
};

// Trains and saves the checkpoint. `stop` (null: none): once it has received a signal, training
// ends after the current step, the checkpoint of that step is saved and stopped_by is set.
SftResult sft(const SftOptions& options, bool show_progress = true, const StopSignals* stop = nullptr);

// A right-padded batch of examples: ids [B, L]; the targets are ids[:, 1:] and mask [B, L-1] is 1
// exactly at the answer tokens (target j predicts ids[j + 1]). Distillation rows, when any example
// has a teacher: kd_rows [N] indexes the flattened B·(L-1) targets; kd_ids / kd_logprobs /
// kd_valid [N, K] hold the teacher's top-k, padded to the largest k.
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct SftBatch {
  at::Tensor ids, mask;
  at::Tensor kd_rows, kd_ids, kd_logprobs, kd_valid;
  SftBatch to(at::Device device) const;  // every defined tensor on `device`
};
SftBatch make_sft_batch(const std::vector<const SftExample*>& examples);

// total = ce + kd_weight · kd: ce the mean token cross-entropy over the mask, kd the mean top-k
// KL (distill_loss.h) over the distillation rows (undefined when there are none).
// logits [B, L-1, V] of ids[:, :-1].
// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct SftLoss {
  at::Tensor total, ce, kd;
};
SftLoss sft_loss(const at::Tensor& logits, const SftBatch& batch, double kd_weight);

}  // namespace grpo
