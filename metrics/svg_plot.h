// Inline SVG charts for the run report: axes with "nice" ticks, raw points with an EMA line per
// series, or stacked areas. Output is an <svg> element for embedding in HTML (no xmlns, no external
// references, no script).
//
// Structure (tests rely on it): one <g class="series" data-key="KEY"> per series holding
//   line plots:    one <circle> per finite point (up to max_markers; beyond that the raw points
//                  are drawn as one <polyline class="raw">), a <polyline class="ema"> when
//                  smoothing > 0, and a red <line class="nonfinite"> tick on the step axis for each
//                  NaN/inf value;
//   stacked plots: one <polygon class="area"> with 2 vertices per step (top edge left to right,
//                  bottom edge right to left).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace grpo {

struct PlotSeries {
  std::string key;
  std::vector<std::pair<int64_t, double>> points;  // (step, value), steps increasing; NaN/inf skipped
};

struct PlotOptions {
  int width = 560, height = 280;
  std::string y_label;
  bool stacked = false;       // stack the series as areas (missing steps count as 0)
  double smoothing = 0.9;     // EMA weight in [0, 1); 0 = no smoothed line
  size_t max_markers = 1000;  // per series; longer series draw their raw points as a line
};

std::string svg_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);

// Text made safe for HTML/SVG content and attribute values (& < > " ').
std::string html_escape(const std::string& s);

// The colour of series i (a ten-colour palette, repeating).
const char* series_color(size_t i);

// Exponential moving average with TensorBoard's debiasing: s_t = w s_{t-1} + (1-w) x_t, shown as
// s_t / (1 - w^t) with s_0 = 0 (so the line starts at the first value, not at 0).
std::vector<double> ema_smooth(const std::vector<double>& y, double weight);

// Evenly spaced round values (1, 2 or 5 times a power of ten) covering [lo, hi], about `target` of
// them; `integer` restricts the spacing to whole numbers (steps).
std::vector<double> nice_ticks(double lo, double hi, int target, bool integer = false);

// Tick label: as few decimals as the spacing needs ("0.25", "1500"), %g-style for very large or
// small magnitudes ("1e-06").
std::string format_tick(double v, double spacing);

}  // namespace grpo
