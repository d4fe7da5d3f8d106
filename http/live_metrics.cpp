#include "http/live_metrics.h"

#include <prometheus/text_serializer.h>

#include <stdexcept>

namespace grpo {

std::string prometheus_name(const std::string& key) {
  std::string name = "grpo_" + key;
  for (char& c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
  return name;
}

template <typename T>
prometheus::Family<T>& LiveMetrics::family(std::map<std::string, prometheus::Family<T>*>& families,
                                           const std::string& name, const std::string& help) {
  auto it = families.find(name);
  if (it != families.end()) return *it->second;
  prometheus::Family<T>* f = nullptr;
  if constexpr (std::is_same_v<T, prometheus::Gauge>)
    f = &prometheus::BuildGauge().Name(name).Help(help).Register(registry_);
  if constexpr (std::is_same_v<T, prometheus::Counter>)
    f = &prometheus::BuildCounter().Name(name).Help(help).Register(registry_);
  if constexpr (std::is_same_v<T, prometheus::Histogram>)
    f = &prometheus::BuildHistogram().Name(name).Help(help).Register(registry_);
  families[name] = f;
  return *f;
}

void LiveMetrics::set(const std::string& key, double value, const std::string& help, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  family(gauges_, prometheus_name(key), help).Add(labels).Set(value);
}

void LiveMetrics::add(const std::string& key, double delta, const std::string& help, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  family(counters_, prometheus_name(key) + "_total", help).Add(labels).Increment(delta);
}

void LiveMetrics::observe(const std::string& key, double value, const std::vector<double>& buckets,
                          const std::string& help, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  family(histograms_, prometheus_name(key), help).Add(labels, buckets).Observe(value);
}

void LiveMetrics::on_scrape(std::function<void(LiveMetrics&)> refresh) {
  std::lock_guard<std::mutex> lock(mu_);
  refresh_.push_back(std::move(refresh));
}

std::string LiveMetrics::text() {
  std::lock_guard<std::mutex> scrape(scrape_mu_);
  std::vector<std::function<void(LiveMetrics&)>> refresh;
  {
    std::lock_guard<std::mutex> lock(mu_);
    refresh = refresh_;
  }
  for (const auto& r : refresh) r(*this);
  return prometheus::TextSerializer().Serialize(registry_.Collect());
}

}  // namespace grpo
