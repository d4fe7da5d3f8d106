// The HTML report: built from a real metrics.jsonl, checked for structure (balanced tags, one SVG per
// metric group with every point drawn), self-containment, atomic writing, and the `grpo report` CLI.
#include "metrics/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "metrics/metrics.h"
#include "metrics/svg_plot.h"
#include "tests/file_testutil.h"

using grpo::ckpt_test::expect_input_error;
using grpo::ckpt_test::read_bytes;
using grpo::ckpt_test::TempDir;
using grpo::ckpt_test::write_bytes;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

// Tag balance of an HTML document: returns "" or what is wrong. Void elements and <!...> declarations
// stand alone; "/>" closes an element.
std::string tag_problem(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> stack;
  for (size_t at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    const size_t end = html.find('>', at);
    if (end == std::string::npos) return "unclosed '<' at " + std::to_string(at);
    std::string tag = html.substr(at + 1, end - at - 1);
    if (tag.empty() || tag[0] == '!') continue;
    const bool closing = tag[0] == '/';
    const bool self_closing = tag.back() == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \n/"));
    if (closing) {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> at " + std::to_string(at) + " closes <" + (stack.empty() ? "" : stack.back()) + ">";
      stack.pop_back();
    } else if (!self_closing && !kVoid.count(name)) {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "<" + stack.back() + "> never closed";
}

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// The markup of the series `key`: <g class="series" data-key="key"> ... </g>.
std::string series_markup(const std::string& html, const std::string& key) {
  const std::string open = "<g class=\"series\" data-key=\"" + key + "\">";
  const size_t at = html.find(open);
  if (at == std::string::npos) return "";
  return html.substr(at, html.find("</g>", at) - at);
}

// Number of "x,y" pairs in the points attribute of the first `element` in `markup`.
size_t point_pairs(const std::string& markup, const std::string& element) {
  const size_t at = markup.find("<" + element);
  if (at == std::string::npos) return 0;
  const size_t p = markup.find("points=\"", at) + 8;
  return count_of(markup.substr(p, markup.find('"', p) - p), ",");
}

constexpr int kSteps = 40;

// A run with every known metric group plus one the report does not know.
std::string make_run(const TempDir& tmp) {
  const std::string run = tmp / "my-run";
  grpo::MetricsWriter w(run);
  for (int s = 0; s < kSteps; ++s) {
    const double t = s / double(kSteps);
    std::map<std::string, double> m = {{"reward/mean", t + 0.1 * std::sin(s)},
                                       {"reward/std", 0.5 - 0.2 * t},
                                       {"accuracy", 0.2 + 0.6 * t},
                                       {"response_length/mean", 300 + 200 * t},
                                       {"response_length/max", 1024},
                                       {"kl", 0.001 * s},
                                       {"entropy", 1.2 - t},
                                       {"clip/fraction", 0.02 + 0.01 * std::cos(s)},
                                       {"mismatch/logp_abs_mean", 0.01},
                                       {"mismatch/logp_abs_max", 0.2},
                                       {"mismatch/kl_k3", 0.001},
                                       {"mismatch/mis_masked", 0.03},
                                       {"mismatch/expert_disagreement", 0.1 - 0.05 * t},
                                       {"mismatch/expert_disagreement/moe_layer0", 0.12 - 0.05 * t},
                                       {"time/generate", 10 + s % 3},
                                       {"time/score", 2},
                                       {"time/train", 5 + 0.1 * s},
                                       {"time/sync", 0.5},
                                       {"grad_norm", 1.0 / (1 + s)},
                                       {"lr", 1e-6 * (s < 10 ? s / 10.0 : 1)},
                                       {"custom/thing", s * 2.0}};
    if (s == 7) m["grad_norm"] = std::nan("");  // a non-finite value is reported, not drawn
    w.log(s, m);
  }
  write_bytes(run + "/config.yaml", "model: <tiny>\ntrain:\n  lr: 1e-6  # & more\n");
  return run;
}

}  // namespace

TEST(SvgPlot, TicksLabelsAndSmoothing) {
  EXPECT_EQ(grpo::nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_EQ(grpo::nice_ticks(0, 97, 6, true), (std::vector<double>{0, 20, 40, 60, 80}));
  EXPECT_EQ(grpo::nice_ticks(-0.33, 0.12, 4), (std::vector<double>{-0.3, -0.2, -0.1, 0, 0.1}));
  EXPECT_EQ(grpo::nice_ticks(0, 3, 6, true), (std::vector<double>{0, 1, 2, 3}));  // never fractional steps
  EXPECT_EQ(grpo::format_tick(0.6000000000000001, 0.2), "0.6");
  EXPECT_EQ(grpo::nice_ticks(0, 2e-5, 4), (std::vector<double>{0, 5e-6, 1e-5, 1.5e-5, 2e-5}));
  EXPECT_EQ(grpo::format_tick(1500, 500), "1500");
  EXPECT_EQ(grpo::format_tick(0.05, 0.05), "0.05");
  EXPECT_EQ(grpo::format_tick(2e-6, 1e-6), "2e-06");
  EXPECT_EQ(grpo::format_tick(-0.0, 1), "0");
  // Debiased EMA: w = 0.5, y = (1, 3): s = (0.5, 1.75) / (0.5, 0.75).
  const auto s = grpo::ema_smooth({1, 3}, 0.5);
  EXPECT_DOUBLE_EQ(s[0], 1);
  EXPECT_DOUBLE_EQ(s[1], 1.75 / 0.75);
  EXPECT_EQ(grpo::ema_smooth({4, 5}, 0), (std::vector<double>{4, 5}));
}

TEST(Report, OnePlotPerGroupWithEveryPoint) {
  TempDir tmp;
  const std::string run = make_run(tmp);
  const std::string path = grpo::write_report(run);
  EXPECT_EQ(path, run + "/report.html");
  const std::string html = read_bytes(path);
  EXPECT_EQ(tag_problem(html), "");
  // Self-contained: nothing fetched from anywhere.
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);

  // Known groups in their fixed order, then the unknown one.
  const std::vector<std::string> groups = {"reward", "accuracy", "response_length",     "kl",   "entropy",
                                           "clip",   "mismatch", "expert_disagreement", "time", "grad_norm",
                                           "lr",     "custom"};
  EXPECT_EQ(count_of(html, "<svg"), groups.size());
  size_t last = 0;
  for (const auto& g : groups) {
    const size_t at = html.find("<div class=\"card\" data-group=\"" + g + "\">");
    ASSERT_NE(at, std::string::npos) << g;
    EXPECT_GT(at, last) << g;
    last = at;
    EXPECT_EQ(count_of(html.substr(at, html.find("<div class=\"card\"", at + 1) - at), "<svg"), 1u) << g;
  }
  EXPECT_THAT(html, HasSubstr("<h3>Rollout\u2013trainer log-prob mismatch</h3>"));
  // The trainer's mismatch metrics (learner/off_policy.h measure_mismatch) share the mismatch card.
  const size_t mismatch_card = html.find("<div class=\"card\" data-group=\"mismatch\">");
  const std::string card =
      html.substr(mismatch_card, html.find("<div class=\"card\"", mismatch_card + 1) - mismatch_card);
  for (const std::string key :
       {"mismatch/logp_abs_mean", "mismatch/logp_abs_max", "mismatch/kl_k3", "mismatch/mis_masked"})
    EXPECT_FALSE(series_markup(card, key).empty()) << key;
  // Expert disagreement (overall and per MoE layer) is a fraction of tokens: a chart of its own.
  const size_t experts_card = html.find("<div class=\"card\" data-group=\"expert_disagreement\">");
  const std::string experts =
      html.substr(experts_card, html.find("<div class=\"card\"", experts_card + 1) - experts_card);
  for (const std::string key : {"mismatch/expert_disagreement", "mismatch/expert_disagreement/moe_layer0"}) {
    EXPECT_FALSE(series_markup(experts, key).empty()) << key;
    EXPECT_TRUE(series_markup(card, key).empty()) << key;
  }

  // Line plots: one dot per finite point and an EMA line through them.
  for (const std::string key : {"reward/mean", "reward/std", "accuracy", "kl", "custom/thing"}) {
    const std::string g = series_markup(html, key);
    ASSERT_FALSE(g.empty()) << key;
    EXPECT_EQ(count_of(g, "<circle"), size_t(kSteps)) << key;
    EXPECT_EQ(point_pairs(g, "polyline class=\"ema\""), size_t(kSteps)) << key;
    EXPECT_EQ(count_of(g, "nonfinite"), 0u) << key;
  }
  // The learning rate is a schedule: points, no smoothed line.
  EXPECT_EQ(count_of(series_markup(html, "lr"), "<circle"), size_t(kSteps));
  EXPECT_EQ(count_of(series_markup(html, "lr"), "ema"), 0u);
  // The NaN is not a dot but a red tick on the step axis.
  EXPECT_EQ(count_of(series_markup(html, "grad_norm"), "<circle"), size_t(kSteps - 1));
  EXPECT_EQ(count_of(series_markup(html, "grad_norm"), "class=\"nonfinite\""), 1u);
  // Time split: four stacked areas, two vertices per step each, no dots, in pipeline order.
  EXPECT_LT(html.find("data-key=\"time/score\""), html.find("data-key=\"time/train\""));
  EXPECT_LT(html.find("data-key=\"time/train\""), html.find("data-key=\"time/sync\""));
  for (const std::string key : {"time/generate", "time/score", "time/train", "time/sync"}) {
    const std::string g = series_markup(html, key);
    EXPECT_EQ(point_pairs(g, "polygon"), size_t(2 * kSteps)) << key;
    EXPECT_EQ(count_of(g, "<circle"), 0u) << key;
  }

  // Summary table: a row per key; best = max for reward, min for time; non-finite counted.
  EXPECT_EQ(count_of(html, "<tr><td>"), 21u);
  EXPECT_THAT(html, HasSubstr("<tr><td>accuracy</td><td>0.2</td><td>0.785</td><td>0.785 <small>@39</small>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>time/score</td><td>2</td><td>2</td><td>2 <small>@0</small>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>reward/std</td><td>0.5</td><td>0.305</td><td>\u2014</td>"));
  EXPECT_THAT(html, HasSubstr("39 <span class=\"warn\">(1 non-finite)</span>"));
  EXPECT_THAT(html, HasSubstr("steps 0\u201339 (40 logged)"));
  // Config verbatim, escaped.
  EXPECT_THAT(html, HasSubstr("<pre>model: &lt;tiny&gt;\ntrain:\n  lr: 1e-6  # &amp; more\n</pre>"));
  EXPECT_THAT(html, HasSubstr("<title>my-run"));
}

TEST(Report, HeldOutMetricsShareTheChartsOfTheirTrainingCounterparts) {
  TempDir tmp;
  const std::string run = tmp / "eval-run";
  grpo::MetricsWriter w(run);
  for (int s = 0; s <= 20; ++s) {
    std::map<std::string, double> m = {{"accuracy", 0.3 + 0.03 * s}, {"response_length/mean", 5.0 + s}};
    if (s % 10 == 0)
      m.insert({{"eval/accuracy", 0.25 + 0.03 * s}, {"eval/response_length", 5.0 + s}, {"eval/format_rate", 1}});
    w.log(s, m);
  }
  const std::string html = read_bytes(grpo::write_report(run));
  auto card = [&](const std::string& group) {
    const size_t at = html.find("<div class=\"card\" data-group=\"" + group + "\">");
    return at == std::string::npos ? std::string() : html.substr(at, html.find("<div class=\"card\"", at + 1) - at);
  };
  EXPECT_THAT(card("accuracy"), HasSubstr("data-key=\"eval/accuracy\""));
  EXPECT_THAT(card("accuracy"), HasSubstr("data-key=\"accuracy\""));
  EXPECT_THAT(card("response_length"), HasSubstr("data-key=\"eval/response_length\""));
  // A held-out metric without a training chart keeps its own.
  EXPECT_THAT(card("eval"), HasSubstr("data-key=\"eval/format_rate\""));
  EXPECT_EQ(card("eval").find("data-key=\"eval/accuracy\""), std::string::npos);
  EXPECT_EQ(count_of(series_markup(html, "eval/accuracy"), "<circle"), 3u);
}

// GRPO steps with groups/trained 0 (dynamic sampling found no group to learn from) are counted
// under the title and in the summary table; a run without the metric has neither.
TEST(Report, CountsTheStepsThatTrainedNoGroup) {
  TempDir tmp;
  const std::string run = tmp / "idle-run";
  {
    grpo::MetricsWriter w(run);
    for (int s = 1; s <= 4; ++s) w.log(s, {{"reward/mean", 0.1 * s}, {"groups/trained", s == 2 || s == 4 ? 0 : 3}});
  }
  std::string html = read_bytes(grpo::write_report(run));
  EXPECT_EQ(tag_problem(html), "");
  EXPECT_EQ(count_of(html, "2 of 4 steps trained no group (steps 2, 4)"), 2u) << html;
  EXPECT_THAT(html, HasSubstr("<tr id=\"trained-no-group\"><td>steps that trained no group</td><td colspan=\"6\" "
                              "class=\"warn\">"));

  const std::string busy = tmp / "busy-run";
  {
    grpo::MetricsWriter w(busy);
    for (int s = 1; s <= 3; ++s) w.log(s, {{"groups/trained", 3}});
  }
  html = read_bytes(grpo::write_report(busy));
  EXPECT_THAT(html, HasSubstr("<td colspan=\"6\">0 of 3 steps trained no group</td>"));
  EXPECT_THAT(html, ::testing::Not(HasSubstr("class=\"warn\">0 of")));

  html = read_bytes(grpo::write_report(make_run(tmp)));  // no groups/trained: not a GRPO run
  EXPECT_THAT(html, ::testing::Not(HasSubstr("trained no group")));
}

TEST(Report, LongSeriesDrawRawPointsAsALine) {
  TempDir tmp;
  const std::string run = make_run(tmp);
  grpo::ReportOptions o;
  o.max_markers = 10;
  o.smoothing = 0;
  const std::string html = read_bytes(grpo::write_report(run, o));
  EXPECT_EQ(tag_problem(html), "");
  EXPECT_EQ(count_of(html, "<circle"), 0u);
  EXPECT_EQ(count_of(html, "class=\"ema\""), 0u);
  EXPECT_EQ(point_pairs(series_markup(html, "reward/mean"), "polyline class=\"raw\""), size_t(kSteps));
}

TEST(Report, WrittenAtomicallyAndRegenerated) {
  TempDir tmp;
  const std::string run = make_run(tmp);
  grpo::write_report(run);
  const std::string first = read_bytes(run + "/report.html");
  {
    grpo::MetricsWriter w(run);
    w.log(kSteps, {{"accuracy", 0.99}});
  }
  grpo::write_report(run);
  const std::string second = read_bytes(run + "/report.html");
  EXPECT_NE(first, second);
  EXPECT_THAT(second, HasSubstr("(41 logged)"));
  for (const auto& e : fs::directory_iterator(run))  // no temp file left behind
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr(".tmp")));
  grpo::ReportOptions bad;
  bad.smoothing = 1;
  expect_input_error([&] { grpo::write_report(run, bad); }, {"smoothing", "[0, 1)"});
  expect_input_error([&] { grpo::write_report(tmp / "nothing-here"); }, {"nothing-here/metrics.jsonl"});
}

TEST(Report, EmptyRunStillRenders) {
  TempDir tmp;
  const std::string run = tmp / "empty";
  { grpo::MetricsWriter w(run); }
  const std::string html = read_bytes(grpo::write_report(run));
  EXPECT_EQ(tag_problem(html), "");
  EXPECT_THAT(html, HasSubstr("No metrics logged yet."));
  EXPECT_EQ(count_of(html, "<svg"), 0u);
}

TEST(Report, SamplesAreEscapedAndCutWithAnEllipsis) {
  grpo::MetricsHistory m;
  grpo::ReportOptions o;
  const std::string long_text = "<script>alert(1)</script> " + std::string(50, 'x') + "\xC3\xA9tail";
  o.samples = {{"best", 4, "q<1>", "What & why?", {{long_text, 1.0, "equal"}, {"cut \xE2\x82", -0.5, "no <answer>"}}},
               {"worst", 5, "q2", "Short", {}}};
  o.max_sample_chars = 40;
  const std::string html = grpo::render_report(m, "run", "", o);
  EXPECT_EQ(tag_problem(html), "");
  EXPECT_THAT(html, HasSubstr("<h2 id=\"samples\">Samples</h2>"));
  EXPECT_THAT(html, HasSubstr("best \u00b7 step 4 \u00b7 prompt q&lt;1&gt; \u00b7 mean reward 0.25"));
  EXPECT_THAT(html, HasSubstr("<pre>What &amp; why?</pre>"));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt; " + std::string(14, 'x') + "\u2026</td>"));
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  EXPECT_THAT(html, Not(HasSubstr("tail")));
  EXPECT_THAT(html, HasSubstr("<td>no &lt;answer&gt;</td>"));
  EXPECT_THAT(html, HasSubstr("cut \uFFFD\uFFFD</td>"));  // invalid UTF-8 shown as U+FFFD, not cut
  EXPECT_THAT(html, HasSubstr("data-label=\"worst\""));
  // No samples, no section.
  EXPECT_THAT(grpo::render_report(m, "run", "", {}), Not(HasSubstr("Samples")));
}

TEST(ReportCommand, RegeneratesTheReport) {
  TempDir tmp;
  const std::string run = make_run(tmp);
  auto sh = [](const std::string& args, int* code) {
    FILE* p = ::popen((std::string(GRPO_BINARY) + " report " + args + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *code = WEXITSTATUS(::pclose(p));
    return out;
  };
  int code = -1;
  std::string out = sh("--run " + run + " --smoothing 0.6", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr(run + "/report.html"));
  const std::string html = read_bytes(run + "/report.html");
  EXPECT_EQ(count_of(html, "<svg"), 12u);
  EXPECT_EQ(tag_problem(html), "");
  out = sh("--run " + (tmp / "missing"), &code);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("missing/metrics.jsonl"));
  out = sh("--run " + run + " --smoothing 1.5", &code);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("smoothing"));
  out = sh("--run " + run + " --max-markers -1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("--max-markers: expected N >= 0"));
  out = sh("", &code);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("--run"));
}
