// Metrics: one process-wide Prometheus registry (prometheus-cpp core, no
// civetweb Exposer: the text is served by our own HTTP listener).
//
// Modules ask for their series once, keep the handle, and update it on the
// hot path without locks (prometheus-cpp counters and gauges are atomic).
// Asking twice for the same name and labels returns the same series. Label
// values must come from bounded sets (configuration set names, pool names,
// reasons), never from raw input such as recipient domains.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mta::metrics {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void inc(double v = 1) const;
  double value() const;

 private:
  friend Counter counter(std::string_view, std::string_view, const Labels&);
  void* p_ = nullptr;
};

class Gauge {
 public:
  void set(double v) const;
  void inc(double v = 1) const;
  void dec(double v = 1) const;
  double value() const;

 private:
  friend Gauge gauge(std::string_view, std::string_view, const Labels&);
  void* p_ = nullptr;
};

class Histogram {
 public:
  void observe(double v) const;

 private:
  friend Histogram histogram(std::string_view, std::string_view, const std::vector<double>&,
                             const Labels&);
  void* p_ = nullptr;
};

Counter counter(std::string_view name, std::string_view help, const Labels& labels = {});
Gauge gauge(std::string_view name, std::string_view help, const Labels& labels = {});
// Buckets are fixed by the first caller of a name.
Histogram histogram(std::string_view name, std::string_view help,
                    const std::vector<double>& buckets, const Labels& labels = {});

// Latency buckets in seconds, 100 µs .. 60 s.
const std::vector<double>& latency_buckets();

// Everything registered, in the Prometheus text exposition format 0.0.4.
std::string render();

}  // namespace mta::metrics
