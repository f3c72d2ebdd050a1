#pragma once

#include <iostream>
#include <ostream>
#include <string>
#include <vector>

#include "agent/status/prom_text.h"
#include "sys/error.h"

namespace logsplice::agent {

// Where `logsplice status` looks when no --endpoint is given (agent.metrics.listen's example).
inline constexpr const char* kDefaultStatusEndpoint = "127.0.0.1:9880";

// `logsplice status [--endpoint host:port] [--watch]`: scrapes the agent's /metrics and prints
// per-sink state, bytes sent, send rate, connects/disconnects, lag and (when the agent reports
// them per output) bytes copied through userspace, then the files each sink lags on (top 10),
// the inputs with a warning for unreadable input directories, and agent-wide counters. Without
// `watch` it takes two scrapes one second apart (for the rate) and returns; with `watch` it
// redraws every 2 s (ANSI clear) until SIGINT. Returns the process exit code: 0, or 1 when the
// agent cannot be reached or answers badly (the reason goes to `err`). Blocking; for the CLI
// only, never the agent's loop.
int runStatus(const std::string& endpoint, bool watch, std::ostream& out,
              std::ostream& err = std::cerr);

// GETs http://<endpoint>/metrics with a blocking socket; the whole exchange must finish within
// `timeout_ms`. `endpoint` is "host:port", optionally prefixed with "http://".
sys::Result<std::string> fetchMetrics(const std::string& endpoint, int timeout_ms = 2000);

// Renders the status tables from one scrape (`now`) and, when not empty, an earlier one taken
// `seconds` before (for rates). Pure: no I/O, so tests feed it canned metrics text.
std::string formatStatus(const std::vector<PromSample>& now, const std::vector<PromSample>& before,
                         double seconds);

// "0 B", "999 B", "1.5 KiB", "3.0 GiB".
std::string humanBytes(double bytes);

}  // namespace logsplice::agent
