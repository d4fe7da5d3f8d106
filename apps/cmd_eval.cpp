// `grpo eval`: pass@k / maj@k of a checkpoint on a prompt dataset (eval/evaluate.h); the flags
// override a run config's model, template, reward and data.heldout sections.
#include <iostream>

#include "apps/device_choice.h"
#include "apps/dtype_choice.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/error.h"
#include "common/fs.h"
#include "eval/evaluate.h"
#include "train/run_config.h"

namespace {
// The run config's options, then the flags over them.
grpo::EvalOptions eval_options(const grpo::Args& a) {
  if (!a.has("config") && !a.overrides().empty())
    throw grpo::InputError("grpo eval: key=value overrides need --config");
  grpo::EvalOptions o;
  if (a.has("config")) {
    const grpo::Config config = grpo::Config::load(a.get("config"), a.overrides());
    o = grpo::eval_options_from_run_config(config);
    // The reward section as training reads it: the same verifiers, default verifier and options.
    const grpo::RewardSection reward = grpo::reward_section_from_config(config.sub("reward"));
    o.reward_address = reward.address, o.reward_config = reward.config;
    o.verifier = reward.verifier, o.reward_options = reward.options;
  }
  if (a.has("data")) {
    o.dataset = grpo::PromptDatasetSpec{};
    o.dataset.path = a.get("data"), o.dataset.format = a.get("format"), o.dataset.skip_bad = a.flag("skip-bad");
    a.update("prompt-field", o.dataset.prompt_field), a.update("answer-field", o.dataset.answer_field),
        a.update("id-field", o.dataset.id_field);
  } else {
    for (const char* flag : {"format", "prompt-field", "answer-field", "id-field", "skip-bad"})
      if (a.has(flag))
        throw grpo::InputError(std::string("--") + flag + " describes --data, which is not given " +
                               "(with --config, set data.heldout.* instead)");
    if (o.dataset.path.empty())
      throw grpo::InputError("grpo eval: give --data FILE, or --config with a data.heldout section");
  }
  if (a.has("limit")) o.dataset.limit = a.get_int("limit", 0);
  if (a.has("template")) o.chat_template = grpo::ChatTemplate::load(a.get("template"));
  a.update("model", o.model_dir), a.update("tokenizer", o.tokenizer), a.update("reward-server", o.reward_address);
  if (a.has("verifier") && a.get("verifier") != o.verifier) o.reward_options.clear();  // they are reward.verifier's
  a.update("reward-config", o.reward_config), a.update("verifier", o.verifier), a.update("dtype", o.dtype);
  o.dtype = grpo::say_dtype(o.dtype, "eval: dtype");
  o.device = grpo::device_flag(a, "eval");
  if (!o.reward_address.empty() && a.has("reward-config"))
    throw grpo::InputError("--reward-config and --reward-server: the server uses its own config");
  o.format_verifier = a.get("format-verifier"), o.reward_timeout_ms = a.get_int("reward-timeout-ms", 1);
  o.bos = !a.flag("no-bos"), o.progress = !a.flag("quiet");
  o.samples = a.get_int("samples", 1);
  if (a.has("k")) o.ks = grpo::parse_k_list(a.get("k"), o.samples);
  grpo::rollout::SamplingParams& sp = o.params.sampling;
  sp.temperature = a.get_double("temperature"), sp.top_p = a.get_double("top-p"), sp.top_k = a.get_int("top-k", 0);
  o.params.max_new_tokens = a.get_int("max-new-tokens", 1), o.seed = static_cast<uint64_t>(a.get_int64("seed", 0));
  if (a.has("stop")) o.params.stop_strings.push_back(a.get("stop"));
  o.max_seqs = a.get_int("max-seqs", 1), o.max_batched_tokens = a.get_int("max-batched-tokens", 1);
  o.page_size = a.get_int("page-size", 1), o.num_pages = a.get_int("num-pages", 1), o.threads = a.get_int("threads", 0);
  o.score_threads = a.get_int("score-threads", 0);
  return o;
}

int run_eval(const grpo::Args& a) {
  const grpo::EvalOutput out = grpo::evaluate_checkpoint(eval_options(a), a.has("samples-out"));
  const std::string text = out.summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (a.has("samples-out")) grpo::write_text_atomic(a.get("samples-out"), out.sample_lines);
  if (a.has("out")) grpo::write_text_atomic(a.get("out"), text);
  std::cout << text;
  return 0;
}

}  // namespace

GRPO_COMMAND("eval", "pass@k / maj@k of a checkpoint on a prompt dataset (sample, verify, summarise)",
             "[CONFIG] [key.path=value ...]",
             ({{"model", "DIR", "HF checkpoint directory (else model.path of --config)", false},
               {"tokenizer", "PATH", "tokenizer.json or its directory (default: the model's)", false},
               {"config", "FILE",
                "run config: data.heldout, template, model and reward sections (scored as in training)", false},
               {"data", "FILE", "prompt dataset (.jsonl, .jsonl.gz or .parquet) instead of data.heldout", false},
               {"format", "NAME", "jsonl, gsm8k, math, math500, aime, amc23, humaneval, mbpp or verl", false, "jsonl"},
               {"prompt-field", "NAME", "prompt field (default: the format's)", false},
               {"answer-field", "NAME", "answer field (default: the format's)", false},
               {"id-field", "NAME", "id field (default: the format's)", false},
               {"skip-bad", "", "skip and count bad dataset rows instead of failing", false},
               {"limit", "N", "evaluate the first N prompts (0 = all)", false},
               {"template", "NAME|FILE", "chat template (default: the config's, else r1-zero)", false},
               {"no-bos", "", "do not prepend the tokenizer's BOS", false},
               {"reward-config", "FILE", "reward config for in-process verifiers (default: reward.config)", false},
               {"reward-server", "ADDR", "score with this reward server instead (default: reward.address)", false},
               {"reward-timeout-ms", "MS", "deadline of each reward-server call", false, "60000"},
               {"verifier", "NAME",
                "verifier for items that name none (default: reward.verifier with reward.options, else math)", false},
               {"format-verifier", "NAME", "verifier whose verdict is the format rate (\"\" = skip)", false, "format"},
               {"samples", "N", "completions per prompt (n)", false, "1"},
               {"k", "K,K,..", "k values for pass@k and maj@k (default: 1,n)", false},
               {"max-new-tokens", "N", "tokens to generate at most", false, "1024"},
               {"temperature", "T", "0 = greedy", false, "0.6"},
               {"top-p", "P", "nucleus sampling mass", false, "0.95"},
               {"top-k", "K", "0 = all tokens", false, "0"},
               {"seed", "N", "sampling seed (prompt i uses seed + i)", false, "0"},
               {"stop", "TEXT", "stop once a completion contains this, e.g. </answer>", false},
               grpo::device_option(),
               {"dtype", "TYPE",
                "fp32, bf16, fp8, or auto (bf16 where the CPU has native bf16 dot products, else fp32)", false, "fp32"},
               {"max-seqs", "N", "sequences decoded together", false, "64"},
               {"max-batched-tokens", "N", "tokens fed per engine step", false, "2048"},
               {"page-size", "N", "latent cache page size (tokens)", false, "16"},
               {"num-pages", "N", "latent cache pages", false, "2048"},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"},
               {"score-threads", "N", "in-process verification threads", false, "4"},
               {"out", "FILE", "write the summary JSON here too", false},
               {"samples-out", "FILE", "write one JSON line per sample here", false},
               {"quiet", "", "no progress lines", false}}),
             run_eval);
