#include "agent/status/prom_metric_writer.h"

#include <cassert>

namespace logsplice::agent {

void PromMetricWriter::add(std::string_view family, std::string_view help, sys::MetricType type,
                           const sys::MetricLabels& labels, double value) {
  PromType prom_type = type == sys::MetricType::kCounter ? PromType::kCounter : PromType::kGauge;
  auto [it, inserted] = index_.try_emplace(std::string(family), families_.size());
  if (inserted) {
    families_.push_back(Family{std::string(family), std::string(help), prom_type, {}});
  }
  Family& f = families_[it->second];
  // One family, one meaning: two components disagreeing on the type is a programming error.
  assert(f.type == prom_type);
  f.samples.emplace_back(labels, value);
}

std::string PromMetricWriter::text() const {
  PromTextBuilder b;
  for (const Family& f : families_) {
    b.family(f.name, f.help, f.type);
    for (const auto& [labels, value] : f.samples) b.sample(f.name, labels, value);
  }
  return b.take();
}

}  // namespace logsplice::agent
