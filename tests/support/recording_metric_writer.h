#pragma once

// A MetricWriter that keeps every sample, for tests of a component's collectMetrics().

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/metrics.h"

namespace logsplice::testing {

class RecordingMetricWriter : public sys::MetricWriter {
 public:
  struct Sample {
    std::string family;
    std::string help;
    sys::MetricType type;
    sys::MetricLabels labels;
    double value;
  };
  std::vector<Sample> samples;

  void add(std::string_view family, std::string_view help, sys::MetricType type,
           const sys::MetricLabels& labels, double value) override {
    samples.push_back({std::string(family), std::string(help), type, labels, value});
  }
  // The samples of one family, in order.
  std::vector<Sample> of(std::string_view family) const {
    std::vector<Sample> out;
    for (const Sample& s : samples) {
      if (s.family == family) out.push_back(s);
    }
    return out;
  }
  // The one sample of `family` with exactly these labels.
  std::optional<Sample> find(std::string_view family, const sys::MetricLabels& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.family == family && s.labels == labels) return s;
    }
    return std::nullopt;
  }
  // Family names in the order they first appear.
  std::vector<std::string> families() const {
    std::vector<std::string> out;
    for (const Sample& s : samples) {
      if (out.empty() || out.back() != s.family) {
        bool seen = false;
        for (const auto& f : out) seen |= f == s.family;
        if (!seen) out.push_back(s.family);
      }
    }
    return out;
  }
};

}  // namespace logsplice::testing
