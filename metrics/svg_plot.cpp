#include "metrics/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace grpo {
namespace {

constexpr double kLeft = 62, kRight = 14, kTop = 12, kBottom = 38;  // margins around the plot area

std::string num(double v) {  // a coordinate
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Linear map of [lo, hi] onto [a, b].
struct Scale {
  double lo, hi, a, b;
  double operator()(double v) const { return a + (v - lo) / (hi - lo) * (b - a); }
};

// [lo, hi] widened so that a constant series still gets an axis with some room.
std::pair<double, double> padded(double lo, double hi, double frac) {
  if (hi > lo) {
    const double pad = (hi - lo) * frac;
    return {lo - pad, hi + pad};
  }
  const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
  return {lo - pad, hi + pad};
}

std::vector<std::pair<int64_t, double>> finite_points(const PlotSeries& s) {
  std::vector<std::pair<int64_t, double>> out;
  for (const auto& p : s.points)
    if (std::isfinite(p.second)) out.push_back(p);
  return out;
}

std::string polyline(const char* cls, const char* color, double width, double opacity,
                     const std::vector<std::pair<double, double>>& xy) {
  std::string out = std::string("<polyline class=\"") + cls + "\" fill=\"none\" stroke=\"" + color +
                    "\" stroke-width=\"" + num(width) + "\" stroke-opacity=\"" + num(opacity) + "\" points=\"";
  for (size_t i = 0; i < xy.size(); ++i) out += (i ? " " : "") + num(xy[i].first) + "," + num(xy[i].second);
  return out + "\"/>";
}

void draw_axes(std::string& out, const Scale& x, const Scale& y, const std::string& y_label, double height) {
  const double x0 = x.a, x1 = x.b, y0 = y.b, y1 = y.a;  // plot area: x0..x1, y0 (top)..y1 (bottom)
  out += "<rect x=\"" + num(x0) + "\" y=\"" + num(y0) + "\" width=\"" + num(x1 - x0) + "\" height=\"" + num(y1 - y0) +
         "\" fill=\"#fff\" stroke=\"#bbb\"/>";
  const std::vector<double> yt = nice_ticks(y.lo, y.hi, 5);
  const double ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double t : yt) {
    const double py = y(t);
    out += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(py) + "\" y2=\"" + num(py) +
           "\" stroke=\"#eee\"/><text x=\"" + num(x0 - 5) + "\" y=\"" + num(py + 4) + "\" text-anchor=\"end\">" +
           format_tick(t, ys) + "</text>";
  }
  const std::vector<double> xt = nice_ticks(x.lo, x.hi, 6, true);
  const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double t : xt) {
    const double px = x(t);
    out += "<line x1=\"" + num(px) + "\" x2=\"" + num(px) + "\" y1=\"" + num(y0) + "\" y2=\"" + num(y1) +
           "\" stroke=\"#eee\"/><text x=\"" + num(px) + "\" y=\"" + num(y1 + 15) + "\" text-anchor=\"middle\">" +
           format_tick(t, xs) + "</text>";
  }
  out += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(height - 6) +
         "\" text-anchor=\"middle\" fill=\"#555\">step</text>";
  if (!y_label.empty())
    out += "<text transform=\"rotate(-90)\" x=\"" + num(-(y0 + y1) / 2) +
           "\" y=\"13\" text-anchor=\"middle\" fill=\"#555\">" + html_escape(y_label) + "</text>";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

const char* series_color(size_t i) {
  static const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kPalette[i % 10];
}

std::vector<double> ema_smooth(const std::vector<double>& y, double weight) {
  std::vector<double> out(y.size());
  double s = 0, debias = 1;
  for (size_t i = 0; i < y.size(); ++i) {
    s = weight * s + (1 - weight) * y[i];
    debias *= weight;
    out[i] = s / (1 - debias);
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer) {
  if (!(hi > lo) || target < 1) return {lo};
  const double raw = (hi - lo) / target;
  int e = static_cast<int>(std::floor(std::log10(raw)));
  const double norm = raw / std::pow(10.0, e);
  int nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  if (integer && e < 0) nice = 1, e = 0;
  // Tick k is k * nice * 10^e. For e < 0 it divides by the exact integer 10^-e, so that ticks are
  // the doubles nearest to their decimal values (0.6, not 0.6000000000000001).
  auto tick = [&](double k) { return e < 0 ? k * nice / std::pow(10.0, -e) : k * nice * std::pow(10.0, e); };
  const double step = tick(1);
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); tick(k) <= hi + step * 1e-9; k += 1)
    ticks.push_back(tick(k) + 0.0);  // + 0.0 turns -0 into 0
  return ticks;
}

std::string format_tick(double v, double spacing) {
  char buf[32];
  if (v == 0) return "0";
  if (std::max(std::fabs(v), spacing) >= 1e6 || spacing < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    const int decimals = spacing >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(spacing) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

std::string svg_plot(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  const double W = o.width, H = o.height;
  // Finite points per series and the data ranges.
  std::vector<std::vector<std::pair<int64_t, double>>> pts;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const PlotSeries& s : series) {
    for (const auto& p : s.points) xlo = std::min(xlo, double(p.first)), xhi = std::max(xhi, double(p.first));
    pts.push_back(finite_points(s));
    for (const auto& p : pts.back()) ylo = std::min(ylo, p.second), yhi = std::max(yhi, p.second);
  }
  // Stacked: cumulative sums over the union of steps (a missing value counts as 0).
  std::vector<int64_t> steps;
  std::vector<std::vector<double>> cum;
  if (o.stacked) {
    std::map<int64_t, std::vector<double>> at;
    for (size_t k = 0; k < pts.size(); ++k)
      for (const auto& [step, v] : pts[k]) at.try_emplace(step, pts.size(), 0.0).first->second[k] = v;
    cum.assign(pts.size(), {});
    for (const auto& [step, vals] : at) {
      steps.push_back(step);
      double c = 0;
      for (size_t k = 0; k < vals.size(); ++k) cum[k].push_back(c += vals[k]);
    }
    ylo = 0, yhi = 0;
    for (const auto& c : cum)
      for (double v : c) ylo = std::min(ylo, v), yhi = std::max(yhi, v);
  }
  if (!(xlo <= xhi)) xlo = 0, xhi = 1;  // no points
  if (!(ylo <= yhi)) ylo = 0, yhi = 1;  // nothing finite
  if (xlo == xhi) xlo -= 1, xhi += 1;
  std::tie(ylo, yhi) = o.stacked && ylo == 0 && yhi > 0 ? std::make_pair(0.0, yhi * 1.05) : padded(ylo, yhi, 0.05);
  const Scale x{xlo, xhi, kLeft, W - kRight}, y{ylo, yhi, H - kBottom, kTop};

  std::string out = "<svg class=\"plot\" width=\"" + num(W) + "\" height=\"" + num(H) + "\" viewBox=\"0 0 " + num(W) +
                    " " + num(H) + "\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">";
  draw_axes(out, x, y, o.y_label, H);
  for (size_t k = 0; k < series.size(); ++k) {
    const char* color = series_color(k);
    out += "<g class=\"series\" data-key=\"" + html_escape(series[k].key) + "\">";
    if (o.stacked) {
      out +=
          "<polygon class=\"area\" fill=\"" + std::string(color) + "\" fill-opacity=\"0.75\" stroke=\"none\" points=\"";
      for (size_t i = 0; i < steps.size(); ++i) out += (i ? " " : "") + num(x(steps[i])) + "," + num(y(cum[k][i]));
      for (size_t i = steps.size(); i-- > 0;) out += " " + num(x(steps[i])) + "," + num(y(k ? cum[k - 1][i] : 0.0));
      out += "\"/>";
    } else {
      const auto& p = pts[k];
      std::vector<std::pair<double, double>> raw;
      for (const auto& [step, v] : p) raw.emplace_back(x(step), y(v));
      if (p.size() <= o.max_markers) {
        for (const auto& [px, py] : raw)
          out += "<circle cx=\"" + num(px) + "\" cy=\"" + num(py) + "\" r=\"1.8\" fill=\"" + color +
                 "\" fill-opacity=\"" + (o.smoothing > 0 ? "0.35" : "0.9") + "\"/>";
        if (o.smoothing <= 0 && raw.size() > 1) out += polyline("raw", color, 1.2, 0.9, raw);
      } else {
        out += polyline("raw", color, 1, o.smoothing > 0 ? 0.3 : 0.9, raw);
      }
      for (const auto& [step, v] : series[k].points)  // NaN/inf: a red tick on the step axis
        if (!std::isfinite(v))
          out += "<line class=\"nonfinite\" x1=\"" + num(x(step)) + "\" x2=\"" + num(x(step)) + "\" y1=\"" + num(y.a) +
                 "\" y2=\"" + num(y.a - 9) + "\" stroke=\"#d00\" stroke-width=\"2\"/>";
      if (o.smoothing > 0 && p.size() > 1) {
        std::vector<double> v;
        for (const auto& q : p) v.push_back(q.second);
        const std::vector<double> s = ema_smooth(v, o.smoothing);
        std::vector<std::pair<double, double>> line;
        for (size_t i = 0; i < p.size(); ++i) line.emplace_back(raw[i].first, y(s[i]));
        out += polyline("ema", color, 1.8, 1, line);
      }
    }
    out += "</g>";
  }
  return out + "</svg>";
}

}  // namespace grpo
