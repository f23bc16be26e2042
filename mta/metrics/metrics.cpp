#include "mta/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <mutex>

namespace mta::metrics {
namespace {

struct State {
  std::mutex mu;
  prometheus::Registry registry;
  std::map<std::string, prometheus::Family<prometheus::Counter>*, std::less<>> counters;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*, std::less<>> gauges;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*, std::less<>> histograms;
};

State& state() {
  static State* s = new State;  // never destroyed: handles outlive static destructors
  return *s;
}

}  // namespace

void Counter::inc(double v) const {
  if (p_) static_cast<prometheus::Counter*>(p_)->Increment(v);
}
double Counter::value() const {
  return p_ ? static_cast<prometheus::Counter*>(p_)->Value() : 0;
}

void Gauge::set(double v) const {
  if (p_) static_cast<prometheus::Gauge*>(p_)->Set(v);
}
void Gauge::inc(double v) const {
  if (p_) static_cast<prometheus::Gauge*>(p_)->Increment(v);
}
void Gauge::dec(double v) const {
  if (p_) static_cast<prometheus::Gauge*>(p_)->Decrement(v);
}
double Gauge::value() const {
  return p_ ? static_cast<prometheus::Gauge*>(p_)->Value() : 0;
}

void Histogram::observe(double v) const {
  if (p_) static_cast<prometheus::Histogram*>(p_)->Observe(v);
}

Counter counter(std::string_view name, std::string_view help, const Labels& labels) {
  auto& s = state();
  std::lock_guard lock(s.mu);
  auto it = s.counters.find(name);
  if (it == s.counters.end()) {
    auto& fam = prometheus::BuildCounter()
                    .Name(std::string(name))
                    .Help(std::string(help))
                    .Register(s.registry);
    it = s.counters.emplace(std::string(name), &fam).first;
  }
  Counter c;
  c.p_ = &it->second->Add(labels);
  return c;
}

Gauge gauge(std::string_view name, std::string_view help, const Labels& labels) {
  auto& s = state();
  std::lock_guard lock(s.mu);
  auto it = s.gauges.find(name);
  if (it == s.gauges.end()) {
    auto& fam = prometheus::BuildGauge()
                    .Name(std::string(name))
                    .Help(std::string(help))
                    .Register(s.registry);
    it = s.gauges.emplace(std::string(name), &fam).first;
  }
  Gauge g;
  g.p_ = &it->second->Add(labels);
  return g;
}

Histogram histogram(std::string_view name, std::string_view help,
                    const std::vector<double>& buckets, const Labels& labels) {
  auto& s = state();
  std::lock_guard lock(s.mu);
  auto it = s.histograms.find(name);
  if (it == s.histograms.end()) {
    auto& fam = prometheus::BuildHistogram()
                    .Name(std::string(name))
                    .Help(std::string(help))
                    .Register(s.registry);
    it = s.histograms.emplace(std::string(name), &fam).first;
  }
  Histogram h;
  h.p_ = &it->second->Add(labels, prometheus::Histogram::BucketBoundaries(buckets));
  return h;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                        1,      2.5,     5,      10,    30,     60};
  return b;
}

std::string render() {
  auto& s = state();
  auto families = s.registry.Collect();
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace mta::metrics
