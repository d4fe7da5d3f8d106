#include "common/progress.h"

#include <cmath>
#include <cstdio>

namespace grpo {

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

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
  done_ += n;
  if (!status.empty()) status_ = status;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() >= 0.5 || done_ >= total_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  draw(true);
}

void Progress::draw(bool final_line) {
  if (!enabled_) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  double eta = rate > 0 ? (total_ - done_) / rate : -1;
  double pct = total_ > 0 ? 100.0 * done_ / total_ : 0;
  std::fprintf(stderr, "\r%s %lld/%lld [%3.0f%%] %.2f it/s elapsed %s ETA %s %s\033[K%s", label_.c_str(),
               (long long)done_, (long long)total_, pct, rate, format_duration(elapsed).c_str(),
               format_duration(eta).c_str(), status_.c_str(), final_line ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace grpo
