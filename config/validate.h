#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sys/error.h"
#include "config/config.h"

namespace logsplice::config {

// Cross-field checks on a config whose fields were each already checked by the parser:
// input names and output names are unique, every output routes from inputs that exist and lists
// each at most once, no two archive outputs write into the same directory (Vector's
// `resources()`), and `backoff.initial <= backoff.max`. Errors name `config.source_path` and the
// mark of the offending entry. An empty result means the config is valid. Pure function; safe to
// call from any thread (the agent calls it again on SIGHUP reloads).
std::vector<ConfigError> validateConfig(const Config& config);

// A network endpoint written "host:port". `host` is a name, an IPv4 address or a bracketed IPv6
// address; the brackets are removed here, so `host` can go straight to getaddrinfo().
struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Splits and checks "host:port". The port must be 1..65535, or 0..65535 with `allow_port_zero`
// (a listen address, where 0 asks the kernel for a free port). IPv6 needs brackets: "[::1]:80".
// The error's context says what is wrong, without naming the config key.
sys::Result<HostPort> parseHostPort(std::string_view text, bool allow_port_zero = false);

}  // namespace logsplice::config
