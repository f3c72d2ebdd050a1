#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/status/prom_text.h"
#include "sys/metrics.h"

namespace logsplice::agent {

// A sys::MetricWriter that renders Prometheus text: every component adds its samples through
// `collectMetrics(sys::MetricWriter&)`, in any order and interleaved, and text() writes one
// HELP/TYPE block per family (families in the order they were first added, each family's
// samples in the order they were added) through PromTextBuilder. The HELP and type of a family
// are those of its first sample; a family has at least one sample (a component with nothing to
// report adds none, and its family is then absent). Not thread-safe; one per scrape.
class PromMetricWriter final : public sys::MetricWriter {
 public:
  void add(std::string_view family, std::string_view help, sys::MetricType type,
           const sys::MetricLabels& labels, double value) override;

  std::string text() const;
  size_t familyCount() const { return families_.size(); }

 private:
  struct Family {
    std::string name;
    std::string help;
    PromType type;
    std::vector<std::pair<PromLabels, double>> samples;
  };
  std::vector<Family> families_;
  std::unordered_map<std::string, size_t> index_;  // family name -> position in families_
};

}  // namespace logsplice::agent
