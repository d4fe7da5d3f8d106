// `grpo compare RUN... --out FILE [--charts K,...] [--table K:STAT,...]`: runs side by side
// (metrics/compare.h): a page with one chart per metric (a line per run) and a table, the table also
// printed on stdout as Markdown.
#include <iostream>
#include <string>
#include <vector>

#include "common/cli.h"
#include "common/error.h"
#include "metrics/compare.h"

namespace {

// What `grpo compare` shows when not told: the on-policy picture of a GRPO run.
constexpr const char* kDefaultTable =
    "mismatch/logp_abs_mean:mean,mismatch/kl_k3:mean,mismatch/expert_disagreement:mean%,eval/accuracy:last";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

int run_compare(const grpo::Args& args) {
  if (!args.overrides().empty())
    throw grpo::InputError("compare: '" + args.overrides().front() + "' is not a run directory (it has '=')");
  grpo::CompareOptions options;
  options.columns = grpo::parse_table_columns(args.get("table"));
  if (args.has("charts")) {
    options.chart_keys = split_commas(args.get("charts"));
  } else {
    for (const auto& c : options.columns) options.chart_keys.push_back(c.key);
    options.chart_keys.emplace_back("mismatch/logp_abs_max");
    options.chart_keys.emplace_back("reward/mean");
  }
  options.smoothing = args.get_double("smoothing");
  const std::vector<grpo::ComparedRun> runs = grpo::write_comparison(args.positional(), args.get("out"), options);
  std::cout << grpo::comparison_markdown(runs, options.columns);
  std::cerr << "compare: wrote " << args.get("out") << "\n";
  return 0;
}

GRPO_COMMAND("compare", "Compare runs: one chart per metric with a line per run, and a table (Markdown on stdout)",
             "RUN [RUN ...]",
             ({{"out", "FILE", "the HTML page to write", true},
               {"table", "K:STAT,...", "table columns: metrics key and mean|last|max|min, '%' for percent", false,
                kDefaultTable},
               {"charts", "K,...", "keys to chart [default: the table's keys, mismatch/logp_abs_max, reward/mean]",
                false},
               {"smoothing", "W", "EMA weight of smoothed lines, in [0, 1); 0 = raw lines", false, "0"}}),
             run_compare, 64);

}  // namespace
