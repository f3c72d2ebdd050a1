#include "sys/host_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace logsplice::sys {
namespace {

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool looksLikeIpv4(std::string_view host) {
  for (char c : host) {
    if (!((c >= '0' && c <= '9') || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::string HostPort::toString() const {
  std::string p = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
  return host + ":" + p;
}

Result<HostPort> parseHostPort(std::string_view text, bool allow_port_zero) {
  const std::string quoted = "'" + std::string(text) + "'";
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Error::invalidConfig("address " + quoted + " has no port (expected host:port)");
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  HostPort out;
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return Error::invalidConfig("address " + quoted +
                                       " has a bad IPv6 part (expected [addr]:port)");
    }
    out.host = std::string(host.substr(1, host.size() - 2));
    in6_addr addr6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &addr6) != 1) {
      return Error::invalidConfig("address " + quoted + ": '" + out.host +
                                       "' is not an IPv6 address");
    }
  } else {
    if (host.empty()) {
      return Error::invalidConfig("address " + quoted + " has no host (expected host:port)");
    }
    if (host.find(':') != std::string_view::npos) {
      return Error::invalidConfig("address " + quoted +
                                       ": IPv6 addresses need brackets, e.g. [::1]:5140");
    }
    for (char c : host) {
      if (!isHostChar(c)) {
        return Error::invalidConfig("address " + quoted + ": '" + std::string(host) +
                                         "' is not a valid host name or IP address");
      }
    }
    out.host = std::string(host);
    in_addr addr4{};
    if (looksLikeIpv4(host) && inet_pton(AF_INET, out.host.c_str(), &addr4) != 1) {
      return Error::invalidConfig("address " + quoted + ": '" + out.host +
                                       "' is not a valid IPv4 address");
    }
  }
  const char* range = allow_port_zero ? "0..65535" : "1..65535";
  if (port_text.empty()) {
    return Error::invalidConfig("address " + quoted + " has no port (expected host:port)");
  }
  uint64_t port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec == std::errc::result_out_of_range) port = UINT64_MAX;
  if (ec == std::errc::invalid_argument || ptr != port_text.data() + port_text.size()) {
    return Error::invalidConfig("address " + quoted + ": port '" + std::string(port_text) +
                                     "' is not a number");
  }
  if (port > 65535 || (port == 0 && !allow_port_zero)) {
    return Error::invalidConfig("address " + quoted + ": port " + std::string(port_text) +
                                     " is out of range (" + range + ")");
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

Result<sockaddr_storage> numericAddress(const HostPort& hp) {
  sockaddr_storage out{};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, hp.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(hp.port);
    return out;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  const char* ip = hp.host == "localhost" ? "127.0.0.1" : hp.host.c_str();
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(hp.port);
    return out;
  }
  return Error::invalidArgument("bad address '" + hp.toString() +
                                "': host must be an IPv4 address, [IPv6] or localhost");
}

std::string socketAddressText(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return host;
}

}  // namespace logsplice::sys
