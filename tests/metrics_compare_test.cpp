// `grpo compare`: table columns parsed and computed by hand, the Markdown table, the page (a chart
// per key with a line per run, colours kept per run), bad input, and the command through the binary.
#include "metrics/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "metrics/metrics.h"
#include "metrics/svg_plot.h"
#include "tests/file_testutil.h"
#include "tests/grpo_cli.h"

using grpo::ckpt_test::expect_input_error;
using grpo::ckpt_test::read_bytes;
using grpo::ckpt_test::TempDir;
using ::testing::HasSubstr;
using Stat = grpo::TableColumn::Stat;

namespace {

grpo::MetricsHistory history(const std::map<std::string, std::vector<std::pair<int64_t, double>>>& series) {
  grpo::MetricsHistory m;
  m.series = series;
  for (const auto& [key, pts] : series)
    for (const auto& p : pts) m.steps.push_back(p.first);
  return m;
}

// The markup of the card charting `key`.
std::string card_of(const std::string& html, const std::string& key) {
  const size_t at = html.find("<div class=\"card\" data-key=\"" + key + "\">");
  if (at == std::string::npos) return "";
  return html.substr(at, html.find("</div>\n</div>", at) - at);
}

}  // namespace

TEST(CompareTable, ColumnsParseWithTheirStatisticAndPercent) {
  const auto cols = grpo::parse_table_columns("a/b:mean,c:last%,d,e/f:max,g:min");
  ASSERT_EQ(cols.size(), 5u);
  EXPECT_EQ(cols[0].key, "a/b");
  EXPECT_EQ(cols[0].stat, Stat::kMean);
  EXPECT_FALSE(cols[0].percent);
  EXPECT_EQ(cols[1].stat, Stat::kLast);
  EXPECT_TRUE(cols[1].percent);
  EXPECT_EQ(cols[2].key, "d");
  EXPECT_EQ(cols[2].stat, Stat::kMean);
  EXPECT_EQ(cols[3].stat, Stat::kMax);
  EXPECT_EQ(cols[4].stat, Stat::kMin);
  EXPECT_EQ(cols[1].heading(), "c (last, %)");
  expect_input_error([] { grpo::parse_table_columns("a:median"); }, {"'a:median'", "median", "mean, last, max or min"});
  expect_input_error([] { grpo::parse_table_columns("a,,b"); }, {"table column ''"});
  expect_input_error([] { grpo::parse_table_columns(":last"); }, {"':last'", "KEY"});
  expect_input_error([] { grpo::parse_table_columns(""); }, {"table column ''"});
}

TEST(CompareTable, StatisticsByHandSkippingNonFinitePoints) {
  const auto m = history({{"x", {{1, 2.0}, {2, std::nan("")}, {3, 4.0}, {4, 0.5}}}, {"y", {{1, INFINITY}}}});
  auto value = [&](const std::string& spec) { return grpo::column_value(m, grpo::parse_table_columns(spec)[0]); };
  EXPECT_DOUBLE_EQ(value("x:mean"), 6.5 / 3);
  EXPECT_DOUBLE_EQ(value("x:last"), 0.5);
  EXPECT_DOUBLE_EQ(value("x:max"), 4.0);
  EXPECT_DOUBLE_EQ(value("x:min"), 0.5);
  EXPECT_TRUE(std::isnan(value("y:mean")));  // no finite value
  EXPECT_TRUE(std::isnan(value("z:mean")));  // no such key
}

TEST(CompareTable, MarkdownHasARowPerRunAndADashForAMissingKey) {
  std::vector<grpo::ComparedRun> runs = {{"fp8", history({{"k", {{1, 0.02}, {2, 0.04}}}, {"acc", {{2, 0.995}}}})},
                                         {"bf16", history({{"acc", {{2, 1.0}}}})}};
  const std::string md = grpo::comparison_markdown(runs, grpo::parse_table_columns("k:mean%,acc:last"));
  EXPECT_EQ(md,
            "| run | k (mean, %) | acc (last) |\n"
            "|---|---|---|\n"
            "| fp8 | 3 % | 0.995 |\n"
            "| bf16 | \u2014 | 1 |\n");
}

TEST(ComparePage, AChartPerKeyWithALinePerRunInTheRunsColours) {
  std::vector<grpo::ComparedRun> runs = {{"a", history({{"k", {{1, 1.0}, {2, 2.0}, {3, 3.0}}}})},
                                         {"b<&>", history({{"k", {{1, 5.0}, {2, 6.0}}}, {"only_b", {{1, 1.0}}}})}};
  grpo::CompareOptions o;
  o.chart_keys = {"only_b", "k", "nobody_has"};
  o.columns = grpo::parse_table_columns("k:last");
  const std::string html = grpo::render_comparison(runs, o, "T");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("nobody_has"), std::string::npos);                     // a key no run has: no chart
  EXPECT_LT(html.find("data-key=\"only_b\""), html.find("data-key=\"k\""));  // the given order
  const std::string k = card_of(html, "k");
  ASSERT_FALSE(k.empty());
  // Run a's line: 3 points, in colour 0; run b's (escaped label): 2 points, colour 1.
  const size_t a = k.find("<g class=\"series\" data-key=\"a\">");
  const size_t b = k.find("<g class=\"series\" data-key=\"b&lt;&amp;&gt;\">");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  const std::string sa = k.substr(a, k.find("</g>", a) - a), sb = k.substr(b, k.find("</g>", b) - b);
  auto circles = [](const std::string& s) {
    size_t n = 0;
    for (size_t at = s.find("<circle"); at != std::string::npos; at = s.find("<circle", at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(circles(sa), 3u);
  EXPECT_EQ(circles(sb), 2u);
  EXPECT_THAT(sa, HasSubstr(grpo::series_color(0)));
  EXPECT_THAT(sb, HasSubstr(grpo::series_color(1)));
  // Run a has no only_b: it keeps its place with no points, so b keeps colour 1 there too.
  const std::string ob = card_of(html, "only_b");
  const size_t ob_b = ob.find("data-key=\"b&lt;&amp;&gt;\"");
  ASSERT_NE(ob_b, std::string::npos);
  EXPECT_THAT(ob.substr(ob_b, ob.find("</g>", ob_b) - ob_b), HasSubstr(grpo::series_color(1)));
  EXPECT_EQ(circles(ob.substr(0, ob_b)), 0u);
  // The table: a row per run with the column's value.
  EXPECT_THAT(html, HasSubstr("<tr><td>a</td><td>3</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>b&lt;&amp;&gt;</td><td>6</td></tr>"));
}

TEST(CompareCli, WritesThePageAndPrintsTheTable) {
  TempDir tmp;
  for (const auto& [name, scale] : std::vector<std::pair<std::string, double>>{{"fp8", 1.0}, {"bf16", 0.0}}) {
    grpo::MetricsWriter w(tmp / name);
    for (int s = 1; s <= 4; ++s)
      w.log(s, {{"mismatch/logp_abs_mean", scale * 0.01 * s},
                {"mismatch/kl_k3", scale * 1e-4},
                {"mismatch/expert_disagreement", scale * 0.05},
                {"reward/mean", 0.25 * s}});
    w.log(4, {{"eval/accuracy", 0.5 + 0.5 * (1 - scale)}});
  }
  grpo_test::ScratchDir scratch("compare_cli");
  const std::string out = tmp / "cmp.html";
  const auto r = grpo_test::run_grpo("compare " + tmp / "fp8" + " " + tmp / "bf16" + " --out " + out, scratch.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "| run | mismatch/logp_abs_mean (mean) | mismatch/kl_k3 (mean) | mismatch/expert_disagreement (mean, %) | "
            "eval/accuracy (last) |\n"
            "|---|---|---|---|---|\n"
            "| fp8 | 0.025 | 0.0001 | 5 % | 0.5 |\n"
            "| bf16 | 0 | 0 | 0 % | 1 |\n");
  const std::string html = read_bytes(out);
  for (const char* key :
       {"mismatch/logp_abs_mean", "mismatch/kl_k3", "mismatch/expert_disagreement", "eval/accuracy", "reward/mean"})
    EXPECT_FALSE(card_of(html, key).empty()) << key;

  // Bad input names what is wrong.
  auto bad = grpo_test::run_grpo("compare " + tmp / "nope" + " --out " + out, scratch.path());
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("nope' has no metrics.jsonl"));
  bad = grpo_test::run_grpo("compare " + tmp / "fp8" + " --out " + out + " --table k:avg", scratch.path());
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("mean, last, max or min"));
  bad = grpo_test::run_grpo("compare --out " + out, scratch.path());
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("at least one run"));
  bad = grpo_test::run_grpo("compare " + tmp / "fp8" + " --out " + out + " --smoothing 1", scratch.path());
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("[0, 1)"));
}
