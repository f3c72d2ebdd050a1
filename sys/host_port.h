#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "sys/error.h"

namespace logsplice::sys {

// A network endpoint written "host:port", parsed once (by the config, or from the command
// line) and passed around typed. `host` is a name, an IPv4 address or an IPv6 address without
// its brackets, so it can go straight to getaddrinfo().
struct HostPort {
  std::string host;
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 address: what parseHostPort reads back.
  std::string toString() const;
  bool operator==(const HostPort&) const = default;
};

// Splits and checks "host:port". The port must be 1..65535, or 0..65535 with `allow_port_zero`
// (a listen address, where 0 asks the kernel for a free port). IPv6 needs brackets: "[::1]:80".
// The error's context says what is wrong, without naming a config key.
Result<HostPort> parseHostPort(std::string_view text, bool allow_port_zero = false);

// The socket address of an endpoint whose host is a literal IP address or "localhost" (which
// is 127.0.0.1): for listening sockets and the status client, which never resolve names.
Result<sockaddr_storage> numericAddress(const HostPort& hp);

// "1.2.3.4:80" or "[::1]:80" for an IPv4/IPv6 socket address (peers and connected addresses in
// logs); "?" for any other family.
std::string socketAddressText(const sockaddr_storage& ss);

}  // namespace logsplice::sys
