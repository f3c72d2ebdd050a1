#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace logsplice::config {

// What parsing a config produced: the typed config when there were no errors, and every error
// found otherwise (unknown keys, wrong types, bad units, then the cross-field checks).
struct ParseResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
  bool ok() const { return config.has_value() && errors.empty(); }
};

// Reads and parses a YAML config file. An unreadable file is one error naming the path.
ParseResult parseConfigFile(const std::string& path);

// Parses YAML text; `name` stands for the file in error messages.
ParseResult parseConfigString(const std::string& text, const std::string& name);

}  // namespace logsplice::config
