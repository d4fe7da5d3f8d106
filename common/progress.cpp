#include "common/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace grpo {
namespace {

constexpr double kRedrawSeconds = 0.5;  // terminal: redraw at most this often
constexpr double kLineSeconds = 10;     // not a terminal: at most one line this often

std::string format_rate(int64_t done, double elapsed_s) {  // `done` in elapsed_s
  char buf[32];
  if (done <= 0 || !(elapsed_s > 0)) return "? it/s";
  const double rate = double(done) / elapsed_s;
  if (rate >= 1)
    std::snprintf(buf, sizeof buf, "%.2f it/s", rate);
  else
    std::snprintf(buf, sizeof buf, "%.1f s/it", 1 / rate);
  return buf;
}

}  // namespace

std::string format_progress_line(const ProgressState& s) {
  const int64_t done_now = s.done - s.initial;
  const double rate = s.elapsed_s > 0 ? double(done_now) / s.elapsed_s : 0;
  const double eta = rate > 0 ? double(s.total - s.done) / rate : -1;
  const double pct = s.total > 0 ? 100.0 * double(s.done) / double(s.total) : 0;
  char head[96];
  std::snprintf(head, sizeof head, " %lld/%lld [%3.0f%%] ", (long long)s.done, (long long)s.total, pct);
  std::string line = s.label + head + format_rate(done_now, s.elapsed_s) + " elapsed " +
                     Progress::format_duration(s.elapsed_s) + " ETA " + Progress::format_duration(eta);
  if (!s.status.empty()) line += " " + s.status;
  return line;
}

Progress::Progress(std::string label, int64_t total, bool enabled, int64_t initial)
    : enabled_(enabled),
      terminal_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  state_.label = std::move(label);
  state_.total = total;
  state_.done = state_.initial = initial;
}

std::string Progress::format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const int64_t s = std::llround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

void Progress::advance(int64_t n, const std::string& status) {
  const bool first = state_.done == state_.initial;
  state_.done += n;
  if (!status.empty()) state_.status = status;
  drawn_ = false;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  const bool due = terminal_ ? since >= kRedrawSeconds : first || since >= kLineSeconds;
  if (due || state_.done >= state_.total) draw(false);
}

void Progress::finish(const std::string& status) {
  if (!status.empty() && status != state_.status) {
    state_.status = status;
    drawn_ = false;
  }
  if (terminal_ || !drawn_) draw(true);
}

void Progress::note(const std::string& line) {
  if (line_open_) {
    std::fprintf(stderr, "\r%s\033[K\n", line.c_str());
    line_open_ = false;
    draw(false);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::draw(bool final_line) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  last_draw_ = now;
  drawn_ = true;
  state_.elapsed_s = std::chrono::duration<double>(now - start_).count();
  const std::string line = format_progress_line(state_);
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
    line_open_ = !final_line;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace grpo
