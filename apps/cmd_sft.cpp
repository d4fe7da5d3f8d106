// `grpo sft --config FILE [key.path=value ...]`: supervised fine-tuning of a dense student on chat
// or prompt/completion JSONL, with optional top-k logit distillation, as the config's `sft:`
// section says (learner/sft.h). Writes the HF checkpoint (+ tokenizer) to sft.out_dir and metrics
// to sft.log_dir; prints a summary line on stdout:
//   {"steps": 200, "first_loss": 5.5, "final_loss": 0.3, "final_ce": 0.3, "final_kd": 0.0,
//    "examples": 64, "with_teacher": 0, "bad_records": 0, "truncated": 0, "overlong_skipped": 0, ...}
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/dtype_choice.h"
#include "apps/lm_dry_run.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/stop_signals.h"
#include "http/address.h"
#include "learner/sft.h"
#include "model/runtime.h"

namespace {

int run_sft(const grpo::Args& args) {
  grpo::StopSignals stop;  // before any thread starts
  stop.watch("sft");
  grpo::Config config = grpo::config_from_args(args, {true, "sft.threads"});
  grpo::apply_http_flag(args, config);
  grpo::SftOptions options = grpo::SftOptions::from_config(config.sub("sft"));
  grpo::say_auto_dtypes(config, {"sft.dtype"}, "sft");
  options.train.http_address = grpo::http_address_from(config);
  if (grpo::dry_run(args)) {
    std::cout << grpo::describe_lm_run(config, options.train, options.steps > 0 ? std::to_string(options.steps) : "");
    return 0;
  }
  const int threads = grpo::set_torch_threads(options.train.threads);
  std::cerr << "sft: " << config.source() << ": model "
            << (options.checkpoint.empty() ? options.model_source + " (random init)" : options.checkpoint) << ", ";
  if (options.steps > 0)
    std::cerr << options.steps << " steps";
  else
    std::cerr << options.epochs << " epochs";
  std::cerr << " of " << options.train.batch_size << " examples, " << threads << " threads -> " << options.train.out_dir
            << "\n";
  const grpo::SftResult r = grpo::sft(options, !args.flag("quiet"), &stop);
  for (const std::string& e : r.data.bad_examples) std::cerr << "sft: skipped " << e << "\n";
  nlohmann::json summary = {{"steps", r.steps},
                            {"first_loss", r.first_loss},
                            {"final_loss", r.final_loss},
                            {"final_ce", r.final_ce},
                            {"final_kd", r.final_kd},
                            {"seconds", r.seconds},
                            {"tokens", r.tokens},
                            {"examples", r.data.examples},
                            {"with_teacher", r.data.with_teacher},
                            {"bad_records", r.data.bad},
                            {"truncated", r.data.truncated},
                            {"overlong_skipped", r.data.overlong},
                            {"out_dir", options.train.out_dir},
                            {"log_dir", options.train.log_dir}};
  std::cout << summary.dump() << "\n";
  if (r.stopped_by == 0) return 0;
  std::cerr << "sft: stopped at step " << r.steps << " (" << strsignal(r.stopped_by) << "); the model after " << r.steps
            << " steps is saved in " << options.train.out_dir << " (sft does not resume: the same command starts over)"
            << std::endl;
  return 128 + r.stopped_by;
}

GRPO_COMMAND("sft", "Fine-tune a dense student on chat / prompt-completion JSONL (+ top-k distillation)",
             "CONFIG [key.path=value ...]",
             ({{"config", "FILE", "run config YAML with an sft: section (or CONFIG)", false},
               {"threads", "N", "intra-op threads (sft.threads; 0 = all cores)", false},
               grpo::dry_run_option(),
               grpo::print_config_option(),
               {"quiet", "", "no progress line", false},
               grpo::http_option()}),
             run_sft);

}  // namespace
