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
// collect.tls: TLS on the listening socket. The collector presents cert_file/key_file; with
// ca_file every agent must present a client certificate that verifies against it, and a host
// with no token authenticates by that certificate (docs/protocol.md, "Authentication").
struct CollectTls {
  Mark mark;  // where `tls:` was written
  std::string cert_file;
  std::string key_file;
  std::string ca_file;       // empty = no client certificates asked for
  int min_version = 0x0303;  // TLS1_2_VERSION or TLS1_3_VERSION
};

struct CollectConfig {
  std::string source_path;
  sys::HostPort listen;  // collect.listen "127.0.0.1:7514"; port 0 = any free port
  std::string dir;       // collect.dir: mirrors and the index
  // collect.tokens: host name -> shared token; the key "*" serves every host not listed.
  // Optional when tls.ca_file is set (hosts without a token authenticate by certificate).
  std::map<std::string, std::string> tokens;
  std::optional<CollectTls> tls;      // collect.tls; absent = plain TCP
  Millis fsync_interval{100};         // collect.fsync.interval
  uint64_t fsync_bytes = 4ull << 20;  // collect.fsync.bytes
  uint64_t max_frame = 1ull << 20;    // collect.limits.max_frame (<= 64 MiB)
  uint64_t max_connections = 1024;    // collect.limits.max_connections
  uint64_t max_streams = 1024;        // collect.limits.max_streams (per connection)
  Millis idle_timeout{60000};         // collect.limits.idle_timeout
  // collect.limits.min_free: free space the collector leaves on dir's filesystem (0 = fill it)
  uint64_t min_free = 64ull << 20;
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
// connect_timeout, keepalive, tls): reads `token`, which may be left out when `tls:` carries a
// client certificate (the collector then authenticates the host by it).
void parseLogspliceOutputKeys(YamlReader& yaml, const Fields& fields, const std::string& where,
                              LogspliceOutput& out);

}  // namespace logsplice::config
