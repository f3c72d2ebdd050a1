#pragma once

// A MetricWriter that keeps every sample, for tests of a component's collectMetrics().

#include <optional>
#include <string>
#include <vector>

#include "sys/metrics.h"

namespace logsplice::testing {

class RecordingMetricWriter : public sys::MetricWriter {
 public:
  struct Sample {
    std::string family, help;
    sys::MetricType type;
    sys::MetricLabels labels;
    double value;
  };
  std::vector<Sample> samples;

  void add(std::string_view family, std::string_view help, sys::MetricType type,
           const sys::MetricLabels& labels, double value) override {
    samples.push_back({std::string(family), std::string(help), type, labels, value});
  }
  // The sample of `family` with exactly these labels, if any.
  std::optional<Sample> find(const std::string& family, const sys::MetricLabels& labels) const {
    for (const Sample& s : samples) {
      if (s.family == family && s.labels == labels) return s;
    }
    return std::nullopt;
  }
};

}  // namespace logsplice::testing
