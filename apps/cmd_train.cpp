// `grpo train CONFIG [key.path=value ...]`: the R1-Zero loop (train/controller.h). SIGINT/SIGTERM
// stop it after the current step with a checkpoint; the same command resumes.
#include <cstring>
#include <iostream>

#include "apps/dtype_choice.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/stop_signals.h"
#include "http/address.h"
#include "train/controller.h"
#include "train/run_plan.h"

namespace {

int run_train(const grpo::Args& a) {
  grpo::StopSignals stop;  // before any thread starts
  stop.watch("train");
  grpo::Config config = grpo::config_from_args(a, {true, "run.threads"});
  grpo::apply_http_flag(a, config);
  grpo::http_address_from(config);  // a bad http.address fails first, before the inputs are checked
  config = grpo::resolve_run_config(config);
  grpo::say_auto_dtypes(config, {"rollout.dtype", "trainer.dtype"}, "train");
  if (grpo::dry_run(a)) {
    std::cout << grpo::describe_run(config);
    return 0;
  }
  grpo::check_resume_config(config, a.flag("allow-config-change"));
  grpo::TrainSummary s = grpo::run_training(config, !a.flag("quiet"), {}, &stop);
  std::cout << "train: " << s.steps_done << " steps done (" << s.steps_done - s.start_step << " in this run";
  if (s.steps_trained_no_group > 0) std::cout << ", " << s.steps_trained_no_group << " trained no group";
  std::cout << ")";
  if (s.first_eval_accuracy >= 0 && s.last_eval_accuracy >= 0)
    std::cout << "; held-out accuracy " << s.first_eval_accuracy << " -> " << s.last_eval_accuracy;
  std::cout << "; run directory " << s.out_dir << " (report.html, metrics.jsonl, checkpoints/)" << std::endl;
  if (s.stopped_by == 0) return 0;
  std::cerr << "train: stopped at step " << s.steps_done << " (" << strsignal(s.stopped_by)
            << "); run the same command to resume" << std::endl;
  return 128 + s.stopped_by;
}

}  // namespace

GRPO_COMMAND("train", "GRPO / R1-Zero training: rollouts, rewards, updates, checkpoints (resumes a stopped run)",
             "CONFIG [key.path=value ...]",
             ({{"config", "FILE", "run config (or CONFIG; configs/tiny-zero.yaml documents the keys)", false},
               {"threads", "N", "intra-op threads (run.threads; 0 = all cores)", false},
               grpo::dry_run_option(),
               grpo::print_config_option(),
               {"allow-config-change", "", "resume a run whose saved config.yaml differs (prints the changes)", false},
               {"quiet", "", "no progress line", false},
               grpo::http_option()}),
             run_train);
