// `grpo eval`'s job: sample n completions per prompt of a dataset with a checkpoint, score each
// with the item's verifier (and the format verifier), summarise with eval/eval.h's metrics.
//
// Prompts are rendered with the chat template as one user message; the rollout engine (either
// model family, rollout/offline.h) samples `samples` completions per prompt, prompt i with seed + i. Scoring:
// reward/scorer.h, in-process (a reward config, "" = the built-in defaults) or through a reward server. Everything that
// can fail on input (dataset, template, tokenizer, verifier names, sampling) is checked before the model is loaded.
//
// The summary JSON: {model, dataset {path, format, prompts, skipped_rows, skipped_examples},
// verifier, format_verifier, sampling {samples, temperature, top_p, top_k, max_new_tokens, seed},
// prompts, samples, metrics {pass@1, pass@k, maj@k, mean_reward, mean_response_tokens,
// format_rate, answer_rate, truncated_rate}, timing {generate_s, score_s, generated_tokens,
// tokens_per_s}}. A sample line: {id, sample, prompt, completion, reference, verifier, correct,
// reward, extracted, reason, format_ok, tokens, finish_reason}.
//
// Pure function of its options apart from the progress lines on stderr; not re-entrant on one set
// of torch threads (it sets their count).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "dataset/prompt_dataset.h"
#include "rollout/engine.h"
#include "tokenizer/chat_template.h"

namespace grpo {

struct EvalOptions {
  std::string model_dir;  // HF checkpoint directory (required)
  std::string tokenizer;  // tokenizer.json or its directory; "" = the model's
  PromptDatasetSpec dataset;
  ChatTemplate chat_template = ChatTemplate::builtin("r1-zero");
  bool bos = true;  // prepend the tokenizer's BOS

  std::string reward_address;  // non-empty: score with this reward server
  std::string reward_config;   // in-process registry config; "" = the built-in defaults
  int64_t reward_timeout_ms = 60000;
  std::string verifier = "math";           // for items that name none
  std::string reward_options;              // JSON object text: the options of `verifier`'s requests, as
                                           // training sends them (reward.options); its entry named
                                           // format_verifier (if an object) goes with the format requests
  std::string format_verifier = "format";  // "" = no format rate
  int score_threads = 4;

  int64_t samples = 1;               // n, >= 1
  std::vector<int64_t> ks;           // pass@k / maj@k; empty = {1, n}
  rollout::GenerationParams params;  // sampling.seed is ignored: prompt i uses seed + i
  uint64_t seed = 0;
  std::string dtype = "fp32";    // fp32, bf16 or fp8
  at::Device device = at::kCPU;  // where the model generates (model/device.h)
  int64_t max_seqs = 64, max_batched_tokens = 2048, page_size = 16, num_pages = 2048;
  int threads = 0;  // intra-op threads, 0 = all cores
  bool progress = true;
};

// The options a run config implies: model.path, model.tokenizer, template, data.heldout (when
// present); the reward section is training's (train/run_config.h), which `grpo eval` reads with
// training's parser. Throws InputError naming a bad key.
EvalOptions eval_options_from_run_config(const Config& run);

// "1,4,16" -> {1, 4, 16} (sorted, unique), each in 1..n; InputError naming `flag` otherwise.
std::vector<int64_t> parse_k_list(const std::string& text, int64_t n, const std::string& flag = "--k");

struct EvalOutput {
  nlohmann::ordered_json summary;
  std::string sample_lines;  // one JSON line per sample when asked for, else ""
};

EvalOutput evaluate_checkpoint(const EvalOptions& options, bool with_sample_lines);

}  // namespace grpo
