#include "http/recent_samples.h"

#include <nlohmann/json.hpp>

#include <sstream>

#include "metrics/svg_plot.h"

namespace grpo {

void RecentSamples::add(SampleGroup group) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_.push_front(std::move(group));
  while (groups_.size() > capacity_) groups_.pop_back();
}

std::string RecentSamples::html(const std::string& title) const {
  std::ostringstream out;
  out << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\"><title>"
      << html_escape(title) << " samples</title><style>body{font-family:sans-serif;margin:2em}pre{white-space:"
      << "pre-wrap;background:#f6f6f6;padding:.5em}td{vertical-align:top;padding:.3em}.ok{color:#070}.bad{color:"
      << "#a00}</style></head><body><h1>" << html_escape(title) << ": recent samples</h1>"
      << "<p><a href=\"/\">report</a> · <a href=\"/samples?format=json\">JSON</a></p>";
  std::lock_guard<std::mutex> lock(mu_);
  if (groups_.empty()) out << "<p>No groups yet.</p>";
  for (const auto& g : groups_) {
    out << "<section class=\"group\"><h2>step " << g.step << ", prompt " << html_escape(g.prompt_id)
        << "</h2><pre class=\"prompt\">" << html_escape(g.prompt) << "</pre><p>reference: <code>"
        << html_escape(g.reference) << "</code></p><table><tr><th>reward</th><th>verdict</th><th>completion</th></tr>";
    for (const auto& c : g.completions)
      out << "<tr><td>" << c.reward << "</td><td class=\"" << (c.correct ? "ok" : "bad") << "\">"
          << html_escape(c.reason) << "</td><td><pre class=\"completion\">" << html_escape(c.text)
          << "</pre></td></tr>";
    out << "</table></section>";
  }
  out << "</body></html>\n";
  return out.str();
}

std::string RecentSamples::json() const {
  nlohmann::json groups = nlohmann::json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& g : groups_) {
    nlohmann::json completions = nlohmann::json::array();
    for (const auto& c : g.completions)
      completions.push_back({{"text", c.text}, {"reward", c.reward}, {"correct", c.correct}, {"reason", c.reason}});
    groups.push_back({{"step", g.step},
                      {"prompt_id", g.prompt_id},
                      {"prompt", g.prompt},
                      {"reference", g.reference},
                      {"completions", completions}});
  }
  return nlohmann::json({{"groups", groups}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace grpo
