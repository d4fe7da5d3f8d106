// `grpo pretrain --config FILE [key.path=value ...]`: next-token pretraining of a DeepSeek V2/V3
// model from random initialisation, as the config's `pretrain:` section says (learner/pretrain.h).
// Writes the HF checkpoint (+ tokenizer) to pretrain.out_dir and metrics to pretrain.log_dir;
// prints a summary line on stdout:
//   {"steps": 1500, "first_loss": 5.6, "final_loss": 0.61, "seconds": 312.4, "tokens": ..., "out_dir": ...}
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/dtype_choice.h"
#include "apps/lm_dry_run.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/stop_signals.h"
#include "http/address.h"
#include "learner/pretrain.h"
#include "model/runtime.h"

namespace {

int run_pretrain(const grpo::Args& args) {
  grpo::StopSignals stop;  // before any thread starts
  stop.watch("pretrain");
  grpo::Config config = grpo::config_from_args(args, {true, "pretrain.threads"});
  grpo::apply_http_flag(args, config);
  // A pretrain config may be a whole run config (configs/tiny-zero.yaml), so the run's sections are known too.
  config.require_known(
      {"pretrain", "publish", "run", "model", "template", "data", "reward", "rollout", "train", "trainer", "http"});
  grpo::PretrainOptions options = grpo::PretrainOptions::from_config(config.sub("pretrain"));
  grpo::say_auto_dtypes(config, {"pretrain.dtype"}, "pretrain");
  options.train.http_address = grpo::http_address_from(config);
  if (grpo::dry_run(args)) {
    std::cout << grpo::describe_lm_run(config, options.train, std::to_string(options.steps));
    return 0;
  }
  const int threads = grpo::set_torch_threads(options.train.threads);
  std::cerr << "pretrain: " << config.source() << ": " << options.steps << " steps of " << options.train.batch_size
            << " sequences, model " << options.model_source << " (random init), " << threads << " threads -> "
            << options.train.out_dir << "\n";
  const grpo::PretrainResult r = grpo::pretrain(options, !args.flag("quiet"), nullptr, {}, &stop);
  nlohmann::json summary = {{"steps", r.steps},
                            {"first_loss", r.first_loss},
                            {"final_loss", r.final_loss},
                            {"seconds", r.seconds},
                            {"tokens", r.tokens},
                            {"truncated", r.truncated},
                            {"out_dir", options.train.out_dir},
                            {"log_dir", options.train.log_dir}};
  std::cout << summary.dump() << "\n";
  if (r.stopped_by == 0) return 0;
  std::cerr << "pretrain: stopped at step " << r.steps << " (" << strsignal(r.stopped_by) << "); the model after "
            << r.steps << " steps is saved in " << options.train.out_dir
            << " (pretrain does not resume: the same command starts over)" << std::endl;
  return 128 + r.stopped_by;
}

GRPO_COMMAND("pretrain", "Pretrain a DeepSeek V2/V3 model (next-token loss) from a config's pretrain: section",
             "CONFIG [key.path=value ...]",
             ({{"config", "FILE", "run config YAML with a pretrain: section (or CONFIG)", false},
               {"threads", "N", "intra-op threads (pretrain.threads; 0 = all cores)", false},
               grpo::dry_run_option(),
               grpo::print_config_option(),
               {"quiet", "", "no progress line", false},
               grpo::http_option()}),
             run_pretrain);

}  // namespace
