// The metrics a process serves at /metrics, in the Prometheus text format: prometheus-cpp's core
// registry (gauges, counters, histograms) and its TextSerializer.
//
// Names: every metric is "grpo_" + its key with each character outside [a-zA-Z0-9_] as '_'
// (metrics.jsonl's "reward/mean" is grpo_reward_mean); counters get "_total".
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace grpo {

using MetricLabels = std::map<std::string, std::string>;

// "grpo_" + `key` with every character outside [a-zA-Z0-9_] replaced by '_'. Pure function.
std::string prometheus_name(const std::string& key);

// Thread-safety: every method may be called from any thread at any time (the training thread sets
// values while the HTTP thread serializes them). A name keeps the type it was first used with;
// using it as another type throws std::invalid_argument (a programming error).
class LiveMetrics {
 public:
  LiveMetrics() = default;
  LiveMetrics(const LiveMetrics&) = delete;
  LiveMetrics& operator=(const LiveMetrics&) = delete;

  // Gauge `key` (with `labels`) = value. `help` is the family's HELP text, taken on first use.
  void set(const std::string& key, double value, const std::string& help = "", const MetricLabels& labels = {});
  // Counter `key`_total += delta (delta >= 0).
  void add(const std::string& key, double delta, const std::string& help = "", const MetricLabels& labels = {});
  // Histogram `key` observes value; `buckets` (increasing upper bounds) are taken on first use.
  void observe(const std::string& key, double value, const std::vector<double>& buckets, const std::string& help = "",
               const MetricLabels& labels = {});
  // Registers `refresh`, called (on the caller's thread) at the start of each text(): for values
  // read from elsewhere when scraped (a server's status).
  void on_scrape(std::function<void(LiveMetrics&)> refresh);
  // The exposition text of every metric (runs the on_scrape callbacks first).
  std::string text();

 private:
  template <typename T>
  prometheus::Family<T>& family(std::map<std::string, prometheus::Family<T>*>& families, const std::string& name,
                                const std::string& help);

  prometheus::Registry registry_;
  std::mutex mu_;  // the maps and the callbacks
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms_;
  std::vector<std::function<void(LiveMetrics&)>> refresh_;
  std::mutex scrape_mu_;  // one text() at a time
};

}  // namespace grpo
