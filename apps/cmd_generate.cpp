// `grpo generate`: sample completions from a checkpoint (rollout/offline.h). One prompt (--prompt-ids
// or --prompt) or many (--prompts FILE, JSONL lines {"prompt": "text"}, {"text": "..."} as `grpo
// chat-template` writes them, or {"prompt_ids": [..]}; "-" reads stdin), each continued --n times.
// Prints one JSON line per completion, ordered by prompt then sample:
//   {"prompt_index": i, "sample": k, "output_ids": [...], "logprobs": [...],
//    "finish_reason": "eos" | "stop" | "length", "weight_version": 0, "text": "..." (with a tokenizer)}
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/device_choice.h"
#include "apps/dtype_choice.h"
#include "common/cli.h"
#include "common/error.h"
#include "model/runtime.h"
#include "rollout/model_tokenizer.h"
#include "rollout/offline.h"
#include "rollout/prompts.h"
#include "tokenizer/tokenizer.h"

namespace {

using nlohmann::json;

int run_generate(const grpo::Args& args) {
  const int sources = args.has("prompt") + args.has("prompt-ids") + args.has("prompts");
  if (sources != 1) throw grpo::InputError("grpo generate: give exactly one of --prompt-ids, --prompt or --prompts");
  grpo::set_torch_threads(args.get_int("threads", 0));

  // --tokenizer, else the checkpoint's own; text prompts need one.
  const std::optional<grpo::Tokenizer> tok = grpo::load_model_tokenizer(
      args.get("model"), args.has("tokenizer") ? args.get("tokenizer") : "", args.has("prompt"));
  const bool bos = !args.flag("no-bos");
  std::vector<std::vector<int64_t>> prompts;
  if (args.has("prompt"))
    prompts.push_back(grpo::rollout::encode_prompt(*tok, args.get("prompt"), bos));
  else if (args.has("prompt-ids"))
    prompts.push_back(grpo::rollout::parse_id_list(args.get("prompt-ids"), "prompt-ids"));
  else
    prompts = grpo::rollout::read_prompt_file(args.get("prompts"), tok ? &*tok : nullptr, bos);

  grpo::rollout::GenerationParams params;
  params.max_new_tokens = args.get_int("max-new-tokens", 1);
  params.sampling.temperature = args.get_double("temperature");
  params.sampling.top_p = args.get_double("top-p");
  params.sampling.top_k = args.get_int("top-k", 0);
  params.sampling.seed = static_cast<uint64_t>(args.get_int64("seed", 0));
  if (args.has("stop-ids")) params.stop_token_ids = grpo::rollout::parse_id_list(args.get("stop-ids"), "stop-ids");
  if (args.has("stop")) params.stop_strings.push_back(args.get("stop"));
  std::vector<grpo::rollout::Request> requests;
  requests.reserve(prompts.size());
  for (const auto& p : prompts) requests.push_back({p, args.get_int("n", 1), params});

  grpo::rollout::EngineOptions eo;
  eo.max_seqs = args.get_int("max-seqs", 1), eo.max_batched_tokens = args.get_int("max-batched-tokens", 1);
  eo.page_size = args.get_int("page-size", 1), eo.num_pages = args.get_int("num-pages", 1);
  eo.speculative = args.flag("speculative");
  eo.speculative_max_seqs = args.get_int("speculative-max-seqs", 0);
  if (args.has("gpu-memory-fraction")) {
    eo.gpu_memory_fraction = args.get_double("gpu-memory-fraction");
    if (!(eo.gpu_memory_fraction > 0 && eo.gpu_memory_fraction <= 1))
      throw grpo::InputError("--gpu-memory-fraction: expected a number in (0, 1], got " +
                             args.get("gpu-memory-fraction"));
  }
  grpo::ModelOptions mo = grpo::ModelOptions::for_dtype(grpo::dtype_flag(args, "generate"));
  mo.device = grpo::device_flag(args, "generate");
  grpo::rollout::OfflineTiming timing;
  const std::vector<grpo::rollout::Completion> done =
      grpo::rollout::generate_offline(args.get("model"), mo, requests, tok ? &*tok : nullptr, eo, {}, {}, &timing);
  for (const auto& c : done) {
    json j = {{"prompt_index", c.request_id},
              {"sample", c.sample_index},
              {"output_ids", c.token_ids},
              {"logprobs", c.logprobs},
              {"finish_reason", grpo::rollout::finish_reason_name(c.finish_reason)},
              {"weight_version", c.weight_version}};
    if (tok) j["text"] = c.text;
    std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  if (args.flag("timing")) {
    std::cerr << "generate: " << done.size() << " completions, " << timing.generated_tokens << " tokens generated in "
              << timing.generate_s << " s: " << static_cast<double>(timing.generated_tokens) / timing.generate_s
              << " tokens/s (prompts " << timing.prompt_tokens << " tokens; model load " << timing.load_s << " s on "
              << grpo::device_name(mo.device) << ")";
    if (timing.draft_tokens > 0)
      std::cerr << "; MTP drafts kept " << timing.accepted_drafts << " of " << timing.draft_tokens << " ("
                << 100 * timing.accepted_drafts / timing.draft_tokens << " %)";
    std::cerr << std::endl;
  }
  return 0;
}

GRPO_COMMAND("generate", "Sample N completions per prompt with the rollout engine, JSONL out", "",
             ({{"model", "DIR", "HF checkpoint directory (config.json + safetensors)", true},
               {"prompt-ids", "IDS", "one prompt as comma-separated token ids, e.g. 1,2,3", false},
               {"prompt", "TEXT", "one prompt as text (needs a tokenizer)", false},
               {"prompts", "FILE", "JSONL of {\"prompt\"|\"text\": text} or {\"prompt_ids\": [..]} (- = stdin)", false},
               {"tokenizer", "PATH",
                "tokenizer.json or its directory (default: the model's; decodes \"text\", enables --stop)", false},
               {"no-bos", "", "do not prepend the tokenizer's BOS to text prompts", false},
               {"n", "G", "completions per prompt (the group size)", false, "1"},
               {"max-new-tokens", "N", "tokens to generate at most", true},
               {"temperature", "T", "0 = greedy", false, "0"},
               {"top-p", "P", "nucleus sampling mass", false, "1"},
               {"top-k", "K", "sample among the K most likely tokens (0 = all)", false, "0"},
               {"seed", "N", "sampling seed (sample k, token t draws with key (seed, k, t))", false, "0"},
               {"stop", "TEXT", "stop once the text contains this (needs a tokenizer)", false},
               {"stop-ids", "IDS", "stop after any of these comma-separated token ids", false},
               {"dtype", "TYPE",
                "fp32, bf16, fp8 (FP8 weights, bf16 compute), or auto (bf16 where the CPU has native bf16 dot "
                "products, else fp32)",
                false, "fp32"},
               {"max-seqs", "N", "sequences decoded together", false, "64"},
               {"max-batched-tokens", "N", "tokens fed per engine step", false, "2048"},
               {"page-size", "N", "latent cache page size (tokens)", false, "16"},
               {"num-pages", "N", "latent cache pages", false, "2048"},
               {"gpu-memory-fraction", "F",
                "on a GPU: as many cache pages as this share of its free memory holds (instead of --num-pages)", false},
               {"speculative", "",
                "draft with the checkpoint's MTP module (speculative decoding; the same completions either way)",
                false},
               {"speculative-max-seqs", "N", "draft only in engine steps with at most N samples in flight", false, "8"},
               grpo::device_option(),
               {"timing", "", "print the generation time and tokens/s on stderr (model load apart)", false},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}),
             run_generate);

}  // namespace
