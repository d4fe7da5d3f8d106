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
  if (a.positional().size() != 1)
    throw grpo::InputError("distill: expected one CONFIG file (see configs/distill-tiny.yaml)");
  grpo::Config config = grpo::Config::load(a.positional()[0], a.overrides());
  grpo::apply_http_flag(a, config);
  grpo::DistillRun how;
  how.export_only = a.flag("export-only");
  how.progress = !a.flag("quiet");
  how.stop = &stop;
  how.command_line = "grpo distill " + a.positional()[0];
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
             ({{"export-only", "", "write the export from the store without sampling", false},
               {"quiet", "", "no progress line", false},
               grpo::http_option()}),
             run_distill_cmd, 1);
