// `grpo report --run DIR`: (re)writes DIR/report.html from DIR/metrics.jsonl (and DIR/config.yaml),
// with samples from DIR/store when there is one (a build with the services).
#include <filesystem>
#include <iostream>
#include <string>

#include "common/cli.h"
#include "common/error.h"
#include "metrics/report.h"
#ifdef GRPO_SERVICES
#include "store/report_samples.h"
#endif

namespace {

int run_report(const grpo::Args& args) {
  grpo::ReportOptions options;
  options.smoothing = args.get_double("smoothing");
  const int markers = args.get_int("max-markers");
  if (markers < 0) throw grpo::InputError("--max-markers: expected N >= 0, got " + std::to_string(markers));
  options.max_markers = static_cast<size_t>(markers);
#ifdef GRPO_SERVICES
  const std::string store = args.get("run") + "/store";
  if (std::filesystem::is_directory(store))  // read-only: a running train keeps writing
    options.samples =
        grpo::report_samples(*grpo::ExperienceStore::open(store, {.create_if_missing = false, .read_only = true}));
#endif
  std::cout << grpo::write_report(args.get("run"), options) << "\n";
  return 0;
}

GRPO_COMMAND("report", "Write RUN/report.html (plots, summary, config) from RUN/metrics.jsonl", "",
             ({{"run", "DIR", "run directory holding metrics.jsonl", true},
               {"smoothing", "W", "EMA weight of the smoothed lines, in [0, 1); 0 = none", false, "0.9"},
               {"max-markers", "N", "raw points drawn as dots up to N per series, as a line beyond", false, "1000"}}),
             run_report);

}  // namespace
