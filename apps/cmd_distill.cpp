// `grpo distill CONFIG [key.path=value ...]`: rejection-sampled distillation data sets
// (distill/distill.h): sample from a teacher checkpoint (or harvest a training run's experience
// store), verify, filter, export JSONL with a dataset card. Resumes a stopped run; --export-only
// rewrites the export from the store. Exit status: 0 with accepted samples, 3 when none passed the
// filters (the files and the card are still written); bad input 2 and other failures 1, as for
// every command (common/cli.h); 128 + the signal when SIGINT/SIGTERM stopped the sampling (after
// the current batch; the same command resumes).
#include <cstring>
#include <iostream>

#include "common/cli.h"
#include "common/error.h"
#include "common/stop_signals.h"
#include "distill/distill.h"
#include "http/address.h"

namespace {

int run_distill_cmd(const grpo::Args& a) {
  grpo::StopSignals stop;  // before any thread starts
  stop.watch("distill", "batch");
  grpo::Config config = grpo::config_from_args(a, {true, "run.threads"});
  grpo::apply_http_flag(a, config);
  grpo::http_address_from(config);  // a bad http.address fails first, before the inputs are checked
  if (grpo::dry_run(a)) {
    const grpo::DistillOptions o = grpo::DistillOptions::from_config(config);
    std::cout << config.dump() << "\n# run directory: " << o.out_dir << "\n";
    return 0;
  }
  grpo::DistillRun how;
  how.export_only = a.flag("export-only");
  how.progress = !a.flag("quiet");
  how.stop = &stop;
  how.command_line = "grpo distill " + a.get("config");
  for (const auto& o : a.overrides()) how.command_line += " " + o;
  if (how.export_only) how.command_line += " --export-only";
  const grpo::DistillSummary s = grpo::run_distill(config, how);
  const auto& c = s.counts;
  if (s.stopped_by) {
    std::cerr << "distill: stopped after sampling " << s.sampled_now << " prompts (" << strsignal(s.stopped_by)
              << "); every sampled prompt is in " << s.out_dir << "/store; run the same command to resume" << std::endl;
    return 128 + s.stopped_by;
  }
  std::cout << "distill: " << c.accepted << " of " << c.samples << " samples accepted from " << c.prompts_sampled
            << " prompts (" << s.sampled_now << " sampled now, " << c.prompts_with_zero_accepted
            << " with none accepted); " << s.out_dir << "/distill.jsonl, pairs.jsonl, dataset_card.md" << std::endl;
  if (s.empty) {
    std::cerr << "distill: EMPTY result: no sample passed the filters (counts per filter in " << s.out_dir
              << "/dataset_card.md)" << std::endl;
    return 3;
  }
  return 0;
}

}  // namespace

GRPO_COMMAND("distill",
             "Rejection-sampled distillation data: sample + verify + filter + export JSONL with a dataset card",
             "CONFIG [key.path=value ...]",
             ({{"config", "FILE", "distill config (or CONFIG; configs/distill-tiny.yaml documents the keys)", false},
               {"threads", "N", "intra-op threads (run.threads; 0 = all cores)", false},
               grpo::dry_run_option(),
               grpo::print_config_option(),
               {"export-only", "", "write the export from the store without sampling", false},
               {"quiet", "", "no progress line", false},
               grpo::http_option()}),
             run_distill_cmd);
