#include "metrics/compare.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "metrics/report.h"
#include "metrics/svg_plot.h"

namespace grpo {
namespace fs = std::filesystem;

namespace {

const char* stat_name(TableColumn::Stat s) {
  switch (s) {
    case TableColumn::Stat::kMean: return "mean";
    case TableColumn::Stat::kLast: return "last";
    case TableColumn::Stat::kMax: return "max";
    case TableColumn::Stat::kMin: return "min";
  }
  return "?";
}

std::string cell_text(const TableColumn& c, double v) {
  if (std::isnan(v)) return "\u2014";
  char buf[40];
  if (c.percent)
    std::snprintf(buf, sizeof buf, "%.3g %%", 100 * v);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

bool has_key(const std::vector<ComparedRun>& runs, const std::string& key) {
  for (const ComparedRun& r : runs)
    if (r.metrics.series.count(key)) return true;
  return false;
}

}  // namespace

std::string TableColumn::heading() const { return key + " (" + stat_name(stat) + (percent ? ", %" : "") + ")"; }

std::vector<TableColumn> parse_table_columns(const std::string& spec) {
  std::vector<TableColumn> out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    const std::string entry = spec.substr(start, end - start);
    start = end + 1;
    const size_t colon = entry.rfind(':');
    TableColumn c;
    c.key = entry.substr(0, colon);
    std::string stat = colon == std::string::npos ? "mean" : entry.substr(colon + 1);
    if (!stat.empty() && stat.back() == '%') {
      c.percent = true;
      stat.pop_back();
    }
    if (c.key.empty())
      throw InputError("table column '" + entry +
                       "': expected KEY[:STAT][%] with a metrics key, e.g. eval/accuracy:last");
    if (stat == "mean")
      c.stat = TableColumn::Stat::kMean;
    else if (stat == "last")
      c.stat = TableColumn::Stat::kLast;
    else if (stat == "max")
      c.stat = TableColumn::Stat::kMax;
    else if (stat == "min")
      c.stat = TableColumn::Stat::kMin;
    else
      throw InputError("table column '" + entry + "': statistic '" + stat + "', expected mean, last, max or min");
    out.push_back(c);
  }
  return out;
}

double column_value(const MetricsHistory& m, const TableColumn& column) {
  const auto it = m.series.find(column.key);
  if (it == m.series.end()) return std::nan("");
  double sum = 0, last = std::nan(""), lo = INFINITY, hi = -INFINITY;
  int64_t n = 0;
  for (const auto& [step, v] : it->second) {
    if (!std::isfinite(v)) continue;
    sum += v;
    last = v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    ++n;
  }
  if (n == 0) return std::nan("");
  switch (column.stat) {
    case TableColumn::Stat::kMean: return sum / double(n);
    case TableColumn::Stat::kLast: return last;
    case TableColumn::Stat::kMax: return hi;
    case TableColumn::Stat::kMin: return lo;
  }
  return std::nan("");
}

std::string comparison_markdown(const std::vector<ComparedRun>& runs, const std::vector<TableColumn>& columns) {
  std::string out = "| run |";
  std::string rule = "|---|";
  for (const TableColumn& c : columns) {
    out += " " + c.heading() + " |";
    rule += "---|";
  }
  out += "\n" + rule + "\n";
  for (const ComparedRun& r : runs) {
    out += "| " + r.label + " |";
    for (const TableColumn& c : columns) out += " " + cell_text(c, column_value(r.metrics, c)) + " |";
    out += "\n";
  }
  return out;
}

std::string render_comparison(const std::vector<ComparedRun>& runs, const CompareOptions& options,
                              const std::string& title) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                    html_escape(title) + " \u2014 grpo compare</title>\n<style>" + report_css() +
                    "</style>\n</head>\n<body>\n<h1>" + html_escape(title) + "</h1>\n<p class=\"meta\">" +
                    std::to_string(runs.size()) + " runs</p>\n";
  if (!options.columns.empty()) {
    out += "<table id=\"table\">\n<tr><th>run</th>";
    for (const TableColumn& c : options.columns) out += "<th>" + html_escape(c.heading()) + "</th>";
    out += "</tr>\n";
    for (const ComparedRun& r : runs) {
      out += "<tr><td>" + html_escape(r.label) + "</td>";
      for (const TableColumn& c : options.columns)
        out += "<td>" + html_escape(cell_text(c, column_value(r.metrics, c))) + "</td>";
      out += "</tr>\n";
    }
    out += "</table>\n";
  }
  out += "<div class=\"grid\">\n";
  static const std::vector<std::pair<int64_t, double>> kNoPoints;
  PlotOptions po;
  po.smoothing = options.smoothing;
  for (const std::string& key : options.chart_keys) {
    if (!has_key(runs, key)) continue;
    std::vector<PlotSeries> series;
    std::string legend;
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto it = runs[i].metrics.series.find(key);
      // A run without the key keeps its place (and colour) with no points.
      series.push_back({runs[i].label, it == runs[i].metrics.series.end() ? kNoPoints : it->second});
      legend += "<span><span class=\"sw\" style=\"background:" + std::string(series_color(i)) + "\"></span>" +
                html_escape(runs[i].label) + "</span>";
    }
    out += "<div class=\"card\" data-key=\"" + html_escape(key) + "\">\n<h3>" + html_escape(key) + "</h3>\n" +
           svg_plot(series, po) + "\n<div class=\"legend\">" + legend + "</div>\n</div>\n";
  }
  return out + "</div>\n</body>\n</html>\n";
}

std::vector<ComparedRun> write_comparison(const std::vector<std::string>& run_dirs, const std::string& out_html,
                                          const CompareOptions& options) {
  if (run_dirs.empty()) throw InputError("compare: give at least one run directory");
  if (!(options.smoothing >= 0 && options.smoothing < 1))
    throw InputError("compare: smoothing is " + std::to_string(options.smoothing) + ", expected a value in [0, 1)");
  std::vector<ComparedRun> runs;
  std::multiset<std::string> names;
  for (const std::string& dir : run_dirs) {
    const fs::path jsonl = fs::path(dir) / "metrics.jsonl";
    if (!fs::is_regular_file(jsonl))
      throw InputError("compare: '" + dir + "' has no metrics.jsonl (expected a run's out_dir)");
    fs::path name = fs::absolute(dir).lexically_normal();
    if (name.filename().empty()) name = name.parent_path();
    runs.push_back({name.filename().string(), read_metrics(jsonl.string())});
    names.insert(runs.back().label);
  }
  for (size_t i = 0; i < runs.size(); ++i)
    if (names.count(runs[i].label) > 1) runs[i].label = run_dirs[i];
  write_text_atomic(out_html, render_comparison(runs, options, "Runs compared"));
  return runs;
}

}  // namespace grpo
