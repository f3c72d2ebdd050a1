#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace logsplice::config {

// Reads the `tls:` map of a tcp output into `tls`, adding an error (file:line:col) for each bad
// key or value, and loads the files it names with OpenSSL so that an unreadable file, a bad CA
// file, an expired certificate or a key that does not match its certificate is a config error
// at `check` and at start, naming the file.
void parseTlsKeys(YamlReader& yaml, const YAML::Node& node, TlsConfig& tls);

// The file checks alone ("" when the files are good), for a reload that re-reads them.
std::string tlsFilesProblem(const TlsConfig& tls);

}  // namespace logsplice::config
