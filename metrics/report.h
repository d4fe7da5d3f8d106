// The run report: RUN_DIR/report.html, one self-contained page (inline SVG and CSS, no script, no
// external references) built from RUN_DIR/metrics.jsonl:
//   * one plot per metric group (the key's part before the first '/', see metrics/metrics.h), known
//     groups first in a fixed order with titles (reward, accuracy, response length, KL, entropy,
//     clip fraction, rollout-trainer mismatch, time split stacked, grad norm, learning rate,
//     throughput), then any other groups alphabetically; raw points plus an EMA line;
//   * a summary table: first, last, best (max for reward/accuracy/throughput, min for the clipped
//     fraction, mismatch and time; none for ".../std" keys and other groups), min, max per key;
//   * RUN_DIR/config.yaml verbatim, when present.
#pragma once
#include <string>

#include "metrics/metrics.h"

namespace grpo {

struct ReportOptions {
  double smoothing = 0.9;     // EMA weight of the smoothed lines; 0 = none
  size_t max_markers = 1000;  // per series; longer series draw raw points as a line
};

// The page for `metrics` (pure; no I/O). `config_yaml` may be empty.
std::string render_report(const MetricsHistory& metrics, const std::string& title, const std::string& config_yaml,
                          const ReportOptions& options = {});

// Reads RUN_DIR/metrics.jsonl (and config.yaml), writes RUN_DIR/report.html atomically (temp file,
// fsync, rename) and returns its path. InputError when metrics.jsonl is missing or unreadable, or
// smoothing is outside [0, 1).
std::string write_report(const std::string& run_dir, const ReportOptions& options = {});

}  // namespace grpo
