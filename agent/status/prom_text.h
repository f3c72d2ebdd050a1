#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/error.h"

namespace logsplice::agent {

// Label pairs in the order they are written. Names must match [a-zA-Z_][a-zA-Z0-9_]*; values
// are any bytes (escaped on output).
using PromLabels = std::vector<std::pair<std::string, std::string>>;

enum class PromType { kCounter, kGauge, kUntyped };

// Builds a Prometheus text exposition (format 0.0.4): `# HELP` / `# TYPE` once per family, then
// its samples. Metric and label names come from our own code, so a bad one is a programming
// error (asserted), not a runtime failure. Not thread-safe; cheap to create per scrape.
class PromTextBuilder {
 public:
  // Starts a family: writes its HELP (escaped) and TYPE lines. Call once per name, before its
  // samples.
  void family(std::string_view name, std::string_view help, PromType type);
  // One sample line: name{l1="v1",...} value.
  void sample(std::string_view name, const PromLabels& labels, double value);
  // Shorthand for a family with a single unlabelled sample.
  void single(std::string_view name, std::string_view help, PromType type, double value);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// One parsed sample. Labels are keyed by name (their order is not significant).
struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;

  // The label's value, or "" when absent.
  const std::string& label(const std::string& key) const;
};

// Parses the text format: comments and blank lines are skipped; a sample line is
// `name[{labels}] value [timestamp]`. Errors name the 1-based line.
sys::Result<std::vector<PromSample>> parsePromText(std::string_view text);

// The escaped forms used in the text format (exposed for tests).
std::string escapePromLabelValue(std::string_view value);
std::string escapePromHelp(std::string_view help);
// Formats a sample value: integers exactly, otherwise shortest round-trip; NaN, +Inf, -Inf.
std::string formatPromValue(double value);
bool isValidPromMetricName(std::string_view name);
bool isValidPromLabelName(std::string_view name);

}  // namespace logsplice::agent
