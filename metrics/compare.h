// Runs side by side: `grpo compare RUN...` reads each RUN/metrics.jsonl and writes one page with a
// chart per metric (one line per run) and a table of one number per run and metric, the table also
// printed as Markdown for a README or a paper. Used for the on-policy experiment (README, "On-policy
// exactness, measured"): rollout–trainer mismatch and expert disagreement of runs that differ in
// their rollout precision and routing replay.
//
// Pure functions (no I/O) except write_comparison; thread-safe.
#pragma once
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace grpo {

struct ComparedRun {
  std::string label;  // the run's name in legends and table rows
  MetricsHistory metrics;
};

// One column of the table: a statistic of one metric over a run's logged steps.
struct TableColumn {
  enum class Stat { kMean, kLast, kMax, kMin };
  std::string key;  // a metrics.jsonl key, e.g. "mismatch/kl_k3"
  Stat stat = Stat::kMean;
  bool percent = false;  // shown as 100·value with a '%'

  std::string heading() const;  // "mismatch/kl_k3 (mean)", "eval/accuracy (last)"
};

// "KEY:STAT[%],..." with STAT mean|last|max|min (":mean" when left out), e.g.
// "mismatch/kl_k3:mean,mismatch/expert_disagreement:mean%,eval/accuracy:last". InputError naming
// the entry and the allowed statistics for anything else (an empty entry or key, an unknown STAT).
std::vector<TableColumn> parse_table_columns(const std::string& spec);

// The column's statistic over the run's finite values of its key; NaN when it has none.
double column_value(const MetricsHistory& m, const TableColumn& column);

// The table as Markdown: a row per run, a column per TableColumn, "—" where a run lacks the key;
// values with 3 significant digits ("%.3g").
std::string comparison_markdown(const std::vector<ComparedRun>& runs, const std::vector<TableColumn>& columns);

struct CompareOptions {
  std::vector<std::string> chart_keys;  // one chart each, in this order; a key no run has is left out
  std::vector<TableColumn> columns;
  double smoothing = 0;  // EMA weight of the smoothed lines in [0, 1); 0 = raw lines only
};

// The page (self-contained HTML: inline SVG and CSS, no script): title, the table, then one chart
// per key with one series per run (<g class="series" data-key="LABEL">, metrics/svg_plot.h).
std::string render_comparison(const std::vector<ComparedRun>& runs, const CompareOptions& options,
                              const std::string& title);

// Reads RUN/metrics.jsonl of every run dir (labelled by the dir's name, or its path where two names
// are equal), writes the page to `out_html` atomically and returns the runs read. InputError naming
// the dir when one has no readable metrics.jsonl, for fewer than one run, or for a smoothing
// outside [0, 1).
std::vector<ComparedRun> write_comparison(const std::vector<std::string>& run_dirs, const std::string& out_html,
                                          const CompareOptions& options);

}  // namespace grpo
