#include "metrics/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "common/utf8.h"
#include "metrics/svg_plot.h"

namespace grpo {
namespace fs = std::filesystem;

namespace {

struct GroupInfo {
  const char* id;
  const char* title;
  const char* y_label;
  int better;                      // +1 higher is better, -1 lower is better, 0 no direction
  bool stacked;                    // areas stacked in `first` order (time split)
  bool smoothed;                   // draw an EMA line (not for schedules such as the learning rate)
  std::vector<std::string> first;  // keys drawn first, in this order; the rest alphabetically
};

// Known groups in page order (docs/architecture.md §4's per-step log).
const std::vector<GroupInfo> kGroups = {
    {"reward", "Reward", "reward", +1, false, true, {"reward/mean", "reward/std"}},
    {"accuracy", "Accuracy", "fraction correct", +1, false, true, {}},
    {"response_length", "Response length", "tokens", 0, false, true, {"response_length/mean"}},
    {"response_clipped_fraction", "Responses cut at the length limit", "fraction", -1, false, true, {}},
    {"kl", "KL to the reference policy", "KL", 0, false, true, {}},
    {"entropy", "Entropy", "nats / token", 0, false, true, {}},
    {"clip", "Clip fraction", "fraction of tokens", 0, false, true, {"clip/fraction"}},
    {"mismatch",
     "Rollout\u2013trainer log-prob mismatch",
     "",
     -1,
     false,
     true,
     {"mismatch/logp_abs_mean", "mismatch/logp_abs_max", "mismatch/kl_k3"}},
    {"expert_disagreement",
     "Expert disagreement: rollout vs trainer routers",
     "fraction of tokens",
     -1,
     false,
     true,
     {"mismatch/expert_disagreement"}},
    {"time",
     "Time per step (stacked)",
     "seconds",
     -1,
     true,
     false,
     {"time/generate", "time/score", "time/train", "time/sync"}},
    {"grad_norm", "Gradient norm", "", 0, false, true, {}},
    {"lr", "Learning rate", "", 0, false, false, {}},
    {"throughput", "Throughput", "", +1, false, true, {}},
};
const size_t kNumKnown = kGroups.size();

// Rank for ordering: known groups by table position, others after them (alphabetically, by id).
size_t group_rank(const std::string& id) {
  for (size_t i = 0; i < kNumKnown; ++i)
    if (id == kGroups[i].id) return i;
  return kNumKnown;
}

const GroupInfo* known_group(const std::string& id) {
  const size_t r = group_rank(id);
  return r < kNumKnown ? &kGroups[r] : nullptr;
}

// A key's chart: the part before the first '/'; held-out metrics whose name is a known group
// (eval/accuracy, eval/response_length, eval/reward) are drawn with their training counterparts, and
// mismatch/expert_disagreement (overall and per MoE layer) has a chart of its own.
std::string group_of(const std::string& key) {
  if (key.rfind("mismatch/expert_disagreement", 0) == 0) return "expert_disagreement";
  std::string head = key.substr(0, key.find('/'));
  if (head == "eval" && key.size() > 5 && group_rank(key.substr(5)) < kNumKnown) return key.substr(5);
  return head;
}

std::string value_text(double v) {
  if (std::isnan(v)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Groups in page order, each with its keys in drawing order.
std::vector<std::pair<std::string, std::vector<std::string>>> grouped_keys(const MetricsHistory& m) {
  std::map<std::string, std::vector<std::string>> groups;  // keys come sorted from the series map
  for (const auto& [key, points] : m.series) groups[group_of(key)].push_back(key);
  std::vector<std::pair<std::string, std::vector<std::string>>> out(groups.begin(), groups.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return group_rank(a.first) < group_rank(b.first); });
  for (auto& [id, keys] : out) {
    const GroupInfo* info = known_group(id);
    if (!info) continue;
    auto rank = [&](const std::string& k) {
      return std::find(info->first.begin(), info->first.end(), k) - info->first.begin();
    };
    std::stable_sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  }
  return out;
}

void summary_row(std::string& out, const std::string& key, const std::vector<std::pair<int64_t, double>>& pts,
                 int better) {
  const std::pair<int64_t, double>* first = nullptr;
  const std::pair<int64_t, double>* last = nullptr;
  const std::pair<int64_t, double>* lo = nullptr;
  const std::pair<int64_t, double>* hi = nullptr;
  int64_t non_finite = 0;
  for (const auto& p : pts) {
    if (!std::isfinite(p.second)) {
      ++non_finite;
      continue;
    }
    if (!first) first = &p;
    last = &p;
    if (!lo || p.second < lo->second) lo = &p;
    if (!hi || p.second > hi->second) hi = &p;
  }
  auto cell = [](const std::pair<int64_t, double>* p, bool with_step) {
    if (!p) return std::string("\u2014");
    return value_text(p->second) + (with_step ? " <small>@" + std::to_string(p->first) + "</small>" : "");
  };
  const auto* best = better > 0 ? hi : better < 0 ? lo : nullptr;
  std::string count = std::to_string(pts.size() - non_finite);
  if (non_finite) count += " <span class=\"warn\">(" + std::to_string(non_finite) + " non-finite)</span>";
  out += "<tr><td>" + html_escape(key) + "</td><td>" + cell(first, false) + "</td><td>" + cell(last, false) +
         "</td><td>" + cell(best, true) + "</td><td>" + cell(lo, true) + "</td><td>" + cell(hi, true) + "</td><td>" +
         count + "</td></tr>";
}

// `text` cut after `max_chars` characters (an invalid byte counts as one) with a "\u2026", made valid
// UTF-8 and escaped for HTML.
std::string sample_text(const std::string& text, size_t max_chars) {
  size_t pos = 0;
  for (size_t n = 0; n < max_chars && pos < text.size(); ++n) {
    char32_t cp = 0;
    pos += utf8::decode(text, pos, &cp);
  }
  std::string shown = utf8::sanitize(std::string_view(text).substr(0, pos));
  if (pos < text.size()) shown += "\u2026";
  return html_escape(shown);
}

void samples_section(std::string& out, const std::vector<ReportSample>& samples, size_t max_chars) {
  out += "<h2 id=\"samples\">Samples</h2>\n";
  for (const ReportSample& s : samples) {
    double mean = 0;
    for (const ReportCompletion& c : s.completions) mean += c.reward;
    if (!s.completions.empty()) mean /= double(s.completions.size());
    out += "<div class=\"card sample\" data-label=\"" + html_escape(s.label) + "\">\n<h3>" + html_escape(s.label) +
           " \u00b7 step " + std::to_string(s.step) + " \u00b7 prompt " + sample_text(s.prompt_id, max_chars) +
           " \u00b7 mean reward " + value_text(mean) + "</h3>\n<pre>" + sample_text(s.prompt, max_chars) +
           "</pre>\n<table>\n<tr><th>#</th><th>reward</th><th>reason</th><th>completion</th></tr>\n";
    for (size_t i = 0; i < s.completions.size(); ++i) {
      const ReportCompletion& c = s.completions[i];
      out += "<tr><td>" + std::to_string(i) + "</td><td>" + value_text(c.reward) + "</td><td>" +
             sample_text(c.reason, max_chars) + "</td><td class=\"text\">" + sample_text(c.text, max_chars) +
             "</td></tr>\n";
    }
    out += "</table>\n</div>\n";
  }
}

// The steps whose groups/trained is 0 (a GRPO step with no group to train on), and how many steps
// logged groups/trained at all.
std::pair<std::vector<int64_t>, size_t> steps_trained_no_group(const MetricsHistory& m) {
  std::vector<int64_t> idle;
  auto it = m.series.find("groups/trained");
  if (it == m.series.end()) return {idle, 0};
  for (const auto& [step, v] : it->second)
    if (v == 0) idle.push_back(step);
  return {idle, it->second.size()};
}

// "2 of 10 steps trained no group (steps 3, 4)", listing at most 10 steps.
std::string trained_no_group_text(const std::vector<int64_t>& idle, size_t of) {
  std::string text = std::to_string(idle.size()) + " of " + std::to_string(of) + " steps trained no group";
  if (idle.empty()) return text;
  text += " (step" + std::string(idle.size() > 1 ? "s " : " ");
  for (size_t i = 0; i < idle.size() && i < 10; ++i) text += (i ? ", " : "") + std::to_string(idle[i]);
  return text + (idle.size() > 10 ? ", \u2026)" : ")");
}

}  // namespace

const char* report_css() {
  return "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;background:#fafafa}"
         "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:0 0 4px}"
         ".meta{color:#666;margin:0 0 16px}.warn{color:#b00}"
         ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:14px}"
         ".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}"
         ".legend{font-size:12px;color:#333;margin-top:2px}.legend span{margin-right:12px;white-space:nowrap}"
         ".sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}"
         "table{border-collapse:collapse;background:#fff;font-size:13px}"
         "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
         "th{background:#f0f0f0}small{color:#888}"
         ".sample{margin-bottom:14px}td.text{text-align:left;white-space:pre-wrap;font-family:monospace;font-size:12px}"
         "pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:12px}";
}

std::string render_report(const MetricsHistory& m, const std::string& title, const std::string& config_yaml,
                          const ReportOptions& options) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                    html_escape(title) + " \u2014 grpo report</title>\n<style>" + report_css() +
                    "</style>\n</head>\n<body>\n";
  out += "<h1>" + html_escape(title) + "</h1>\n<p class=\"meta\">";
  if (m.steps.empty()) {
    out += "No metrics logged yet.";
  } else {
    out += "steps " + std::to_string(m.steps.front()) + "\u2013" + std::to_string(m.steps.back()) + " (" +
           std::to_string(m.steps.size()) + " logged)";
    if (m.wall_time.size() > 1)
      out +=
          " \u00b7 wall time " + Progress::format_duration(m.wall_time.rbegin()->second - m.wall_time.begin()->second);
  }
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  out += std::string(" \u00b7 written ") + when + "</p>\n";
  const auto [idle, trained_steps] = steps_trained_no_group(m);
  if (!idle.empty())
    out += "<p class=\"warn\">" + trained_no_group_text(idle, trained_steps) +
           " (groups/trained = 0: nothing to learn from)</p>\n";
  if (!m.bad_lines.empty()) {
    out += "<p class=\"warn\">Skipped " + std::to_string(m.bad_lines.size()) + " malformed line(s) of metrics.jsonl: ";
    for (size_t i = 0; i < m.bad_lines.size() && i < 5; ++i) out += (i ? "; " : "") + html_escape(m.bad_lines[i]);
    out += m.bad_lines.size() > 5 ? "; \u2026</p>\n" : "</p>\n";
  }

  const auto groups = grouped_keys(m);
  out += "<div class=\"grid\">\n";
  for (const auto& [id, keys] : groups) {
    const GroupInfo* info = known_group(id);
    PlotOptions po;
    po.smoothing = !info || info->smoothed ? options.smoothing : 0;
    po.max_markers = options.max_markers;
    po.stacked = info && info->stacked;
    po.y_label = info ? info->y_label : "";
    std::vector<PlotSeries> series;
    std::string legend;
    for (size_t i = 0; i < keys.size(); ++i) {
      series.push_back({keys[i], m.series.at(keys[i])});
      legend += "<span><span class=\"sw\" style=\"background:" + std::string(series_color(i)) + "\"></span>" +
                html_escape(keys[i]) + "</span>";
    }
    out += "<div class=\"card\" data-group=\"" + html_escape(id) + "\">\n<h3>" + html_escape(info ? info->title : id) +
           "</h3>\n" + svg_plot(series, po) + "\n<div class=\"legend\">" + legend + "</div>\n</div>\n";
  }
  out += "</div>\n";

  if (!groups.empty()) {
    out +=
        "<h2 "
        "id=\"summary\">Summary</h2>\n<table>\n<tr><th>metric</th><th>first</th><th>last</th><th>best</th><th>min</th>"
        "<th>max</th><th>points</th></tr>\n";
    for (const auto& [id, keys] : groups) {
      const GroupInfo* info = known_group(id);
      for (const std::string& key : keys) {
        // A spread (".../std") has no better direction even in a group that has one.
        const bool spread = key.size() > 4 && key.compare(key.size() - 4, 4, "/std") == 0;
        summary_row(out, key, m.series.at(key), info && !spread ? info->better : 0);
        out += "\n";
      }
    }
    if (trained_steps > 0)
      out += std::string("<tr id=\"trained-no-group\"><td>steps that trained no group</td><td colspan=\"6\"") +
             (idle.empty() ? "" : " class=\"warn\"") + ">" + trained_no_group_text(idle, trained_steps) +
             "</td></tr>\n";
    out += "</table>\n";
  }
  if (!options.samples.empty()) samples_section(out, options.samples, options.max_sample_chars);
  if (!config_yaml.empty()) out += "<h2 id=\"config\">Config</h2>\n<pre>" + html_escape(config_yaml) + "</pre>\n";
  return out + "</body>\n</html>\n";
}

std::string write_report(const std::string& run_dir, const ReportOptions& options) {
  if (!(options.smoothing >= 0 && options.smoothing < 1))
    throw InputError("report: smoothing is " + std::to_string(options.smoothing) + ", expected a value in [0, 1)");
  const MetricsHistory m = read_metrics(run_dir + "/metrics.jsonl");
  std::string config;
  if (std::ifstream in{run_dir + "/config.yaml", std::ios::binary})
    config.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  fs::path name = fs::absolute(run_dir).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();
  const std::string html = render_report(m, name.filename().string(), config, options);
  std::string path = run_dir + "/report.html";
  write_text_atomic(path, html);
  return path;
}

}  // namespace grpo
