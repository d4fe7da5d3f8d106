// The live view of a running process (`--http`, http/address.h): an HttpServer (http/server.h)
// with these routes:
//   /metrics   LiveMetrics in the Prometheus text format (http/live_metrics.h)
//   /healthz   200 "ok" while the process runs
//   /readyz    200 "ready" once set_ready(true) (model loaded, services up, first step started),
//              503 "not ready" before
//   /          with a run directory: its report.html (metrics/report.h) rendered from
//              metrics.jsonl at each request, reloading itself every few seconds; else an index
//   /samples   the recent groups (http/recent_samples.h); ?format=json for JSON
//
//   Monitor monitor({address, run_dir, "train"});   // serves at once, on its own thread
//   monitor.log_step(step, values);                 // from the training thread
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "http/live_metrics.h"
#include "http/recent_samples.h"
#include "http/server.h"

namespace grpo {

struct MonitorOptions {
  std::string address;  // "IP:PORT" (http_address_from); port 0: a free port
  std::string run_dir;  // "" : no report at /
  std::string name;     // the process, e.g. "train"; in page titles and the start line
  int refresh_s = 5;    // how often the page at / reloads itself
};

// Thread-safety: every method may be called from any thread; the server runs on its own thread
// and never blocks the callers (values are atomics or held under short locks). The destructor
// stops the server (joins its thread).
class Monitor {
 public:
  // Starts serving and prints "NAME: live view at http://ADDRESS/ (...)" on stderr. InputError
  // naming the address when it cannot be bound.
  explicit Monitor(const MonitorOptions& options);

  const std::string& address() const { return server_->address(); }
  LiveMetrics& metrics() { return metrics_; }
  RecentSamples& samples() { return samples_; }
  void set_ready(bool ready) { ready_ = ready; }
  // One logged step (a metrics.jsonl line): grpo_step = step, and each value as the gauge of its key.
  void log_step(int64_t step, const std::map<std::string, double>& values);

 private:
  HttpResponse page() const;

  MonitorOptions options_;
  LiveMetrics metrics_;
  RecentSamples samples_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<HttpServer> server_;  // last: stopped first
};

}  // namespace grpo
