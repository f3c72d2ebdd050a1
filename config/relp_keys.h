#pragma once

#include <string_view>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace logsplice::config {

// The keys of a `type: relp` output besides name, type and inputs: the transport keys it shares
// with a tcp output (read by the tcp parser into RelpOutput::tcp), and its own.
inline constexpr std::string_view kRelpKeys[] = {
    "addresses", "backoff", "connect_timeout", "keepalive", "facility", "severity",
    "app_name",  "tls",     "window",          "timeout"};

// The largest window a relp output may have (frames unanswered at once).
inline constexpr uint64_t kRelpMaxWindow = 65536;

// What the tcp parser starts from for a relp output: syslog events with octet counting (there
// is no `format` or `framing` key: RELP frames are always that).
TcpOutput relpTransportDefaults();

// Reads `window` and `timeout` into `relp` (its `tcp` already parsed), adding an error
// (file:line:col) for each bad value; `tls.ktls: require` is an error (a relp output reads
// every frame's answer, so its TLS is always userspace).
void parseRelpKeys(YamlReader& yaml, const Fields& fields, RelpOutput& relp);

}  // namespace logsplice::config
