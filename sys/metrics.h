#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace logsplice::sys {

enum class MetricType { kCounter, kGauge };
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Where a component reports its own counters and gauges: each component (tailer, router, sink,
// checkpoint store, ...) has a `void collectMetrics(sys::MetricWriter&) const` that adds its
// samples, and the status library turns them into Prometheus text (grouping the samples of one
// family under one HELP/TYPE block, in the order families first appear). Metric names are an
// interface: dashboards depend on them, so they never change without a note.
class MetricWriter {
 public:
  virtual ~MetricWriter() = default;
  virtual void add(std::string_view family, std::string_view help, MetricType type,
                   const MetricLabels& labels, double value) = 0;
  void counter(std::string_view family, std::string_view help, const MetricLabels& labels,
               double value) {
    add(family, help, MetricType::kCounter, labels, value);
  }
  void gauge(std::string_view family, std::string_view help, const MetricLabels& labels,
             double value) {
    add(family, help, MetricType::kGauge, labels, value);
  }
};

}  // namespace logsplice::sys
