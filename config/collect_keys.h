#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"
#include "sys/host_port.h"

namespace logsplice::config {

// `collect:` — the config of `logsplice collect`, the receiver of `type: logsplice` outputs
// (docs/protocol.md). A file of its own: top level `collect:` only.
struct CollectConfig {
  std::string source_path;
  sys::HostPort listen;  // collect.listen "127.0.0.1:7514"; port 0 = any free port
  std::string dir;       // collect.dir: mirrors and the index
  // collect.tokens: host name -> shared token; the key "*" serves every host not listed.
  std::map<std::string, std::string> tokens;
  Millis fsync_interval{100};                   // collect.fsync.interval
  uint64_t fsync_bytes = 4ull << 20;            // collect.fsync.bytes
  uint64_t max_frame = 1ull << 20;              // collect.limits.max_frame (<= 64 MiB)
  uint64_t max_connections = 1024;              // collect.limits.max_connections
  uint64_t max_streams = 1024;                  // collect.limits.max_streams (per connection)
  Millis idle_timeout{60000};                   // collect.limits.idle_timeout
  std::optional<sys::HostPort> metrics_listen;  // collect.metrics.listen; absent = off
  std::string log_level = "info";
  std::string log_file;
};

struct CollectParseResult {
  std::optional<CollectConfig> config;
  std::vector<ConfigError> errors;
  bool ok() const { return config.has_value() && errors.empty(); }
};

CollectParseResult parseCollectConfigString(const std::string& text, const std::string& name);
CollectParseResult parseCollectConfigFile(const std::string& path);
// Whether a config file is a collector's (its top level has `collect:`), for `logsplice check`.
bool isCollectConfigFile(const std::string& path);

// The keys of a `type: logsplice` output beyond those it shares with tcp (addresses, backoff,
// connect_timeout, keepalive): reads `token`.
void parseLogspliceOutputKeys(YamlReader& yaml, const Fields& fields, const std::string& where,
                              LogspliceOutput& out);

}  // namespace logsplice::config
