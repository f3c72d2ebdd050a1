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
// at `check` and at start, naming the file. Relative file paths are taken from the config
// file's directory (resolveTlsPath). `ktls: require` on a kernel without the `tls` ULP is an
// error at the `ktls` key.
void parseTlsKeys(YamlReader& yaml, const YAML::Node& node, TlsConfig& tls);

// A ca_file/cert_file/key_file value as used: absolute as written, or relative to the directory
// of `config_file` (the name the config was read from; a bare name means the working directory).
std::string resolveTlsPath(const std::string& config_file, const std::string& path);

// The file checks alone ("" when the files are good), for a reload that re-reads them.
std::string tlsFilesProblem(const TlsConfig& tls);

}  // namespace logsplice::config
