// The run report: RUN_DIR/report.html, one self-contained page (inline SVG and CSS, no script, no
// external references) built from RUN_DIR/metrics.jsonl:
//   * one plot per metric group (the key's part before the first '/', see metrics/metrics.h), known
//     groups first in a fixed order with titles (reward, accuracy, response length, KL, entropy,
//     clip fraction, rollout-trainer mismatch, time split stacked, grad norm, learning rate,
//     throughput), then any other groups alphabetically; raw points plus an EMA line;
//   * a summary table: first, last, best (max for reward/accuracy/throughput, min for the clipped
//     fraction, mismatch and time; none for ".../std" keys and other groups), min, max per key;
//   * a samples section, when ReportOptions::samples has any: each group's prompt, completions
//     (escaped, long texts cut with a "…"), rewards and verifier reasons;
//   * RUN_DIR/config.yaml verbatim, when present.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace grpo {

// One completion of a sampled group, as the report shows it.
struct ReportCompletion {
  std::string text;  // any bytes; escaped and cut when rendered
  double reward = 0;
  std::string reason;  // the verifier's verdict
};

// A group shown in the samples section (store/report_samples.h picks them from a run's store).
struct ReportSample {
  std::string label;  // why it is shown: "best", "worst", "random"
  int64_t step = 0;
  std::string prompt_id;
  std::string prompt;
  std::vector<ReportCompletion> completions;
};

struct ReportOptions {
  double smoothing = 0.9;             // EMA weight of the smoothed lines; 0 = none
  size_t max_markers = 1000;          // per series; longer series draw raw points as a line
  std::vector<ReportSample> samples;  // the samples section; none = no section
  size_t max_sample_chars = 600;      // a longer prompt or completion is cut there, with a "…"
};

// The page for `metrics` (pure; no I/O). `config_yaml` may be empty.
std::string render_report(const MetricsHistory& metrics, const std::string& title, const std::string& config_yaml,
                          const ReportOptions& options = {});

// The page's CSS (also the comparison page's, metrics/compare.h).
const char* report_css();

// Reads RUN_DIR/metrics.jsonl (and config.yaml), writes RUN_DIR/report.html atomically (temp file,
// fsync, rename) and returns its path. InputError when metrics.jsonl is missing or unreadable, or
// smoothing is outside [0, 1).
std::string write_report(const std::string& run_dir, const ReportOptions& options = {});

}  // namespace grpo
