#pragma once

// Helpers the config tests share: parse a YAML text as "test.yaml" and look at the result.

#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "config/parse.h"

namespace logsplice::config {

// Every error of `result`, one per line, for INFO messages.
inline std::string allErrors(const ParseResult& result) {
  std::ostringstream out;
  for (const ConfigError& e : result.errors) out << "  " << e.toString() << "\n";
  return out.str();
}

inline ParseResult parse(const std::string& text) {
  return parseConfigString(text, "test.yaml");
}

// Parses `text` and requires it to be valid.
inline Config parseOk(const std::string& text) {
  ParseResult result = parse(text);
  INFO("errors:\n" << allErrors(result));
  REQUIRE(result.ok());
  REQUIRE(result.errors.empty());
  return *result.config;
}

}  // namespace logsplice::config
