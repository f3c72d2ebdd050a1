#pragma once

#include <string>
#include <string_view>

namespace logsplice::sys {

// Where Linux lists the TCP upper-layer protocols it offers now (space separated).
inline constexpr const char* kTcpAvailableUlpPath = "/proc/sys/net/ipv4/tcp_available_ulp";

// Whether `ulp` (e.g. "tls", kernel TLS) is listed in `list_path`. A kernel built with the ULP
// as a module lists it only once the module is loaded; the module's presence under
// /lib/modules/<release>/ counts as well (the first setsockopt(TCP_ULP) loads it).
bool tcpUlpAvailable(std::string_view ulp, const std::string& list_path = kTcpAvailableUlpPath);

// Whether the `tls` ULP's module is installed for the running kernel (not loaded yet).
bool tlsUlpModuleInstalled();

}  // namespace logsplice::sys
