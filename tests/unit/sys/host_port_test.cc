#include "sys/host_port.h"

#include <netinet/in.h>

#include <catch2/catch.hpp>

namespace logsplice::sys {
namespace {

HostPort hostPort(std::string_view text, bool allow_zero = false) {
  Result<HostPort> r = parseHostPort(text, allow_zero);
  INFO(text << ": " << (r.ok() ? "" : r.error().context()));
  REQUIRE(r.ok());
  return r.value();
}

std::string hostPortError(std::string_view text, bool allow_zero = false) {
  Result<HostPort> r = parseHostPort(text, allow_zero);
  INFO(text << " should fail");
  REQUIRE_FALSE(r.ok());
  return r.error().context();
}

TEST_CASE("parseHostPort accepts names, IPv4 and bracketed IPv6", "[sys][host_port]") {
  HostPort a = hostPort("127.0.0.1:5140");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 5140);
  HostPort b = hostPort("collector-1.example.com:1");
  CHECK(b.host == "collector-1.example.com");
  CHECK(b.port == 1);
  HostPort c = hostPort("[::1]:65535");
  CHECK(c.host == "::1");
  CHECK(c.port == 65535);
  CHECK(hostPort("[2001:db8::1]:80").host == "2001:db8::1");
  CHECK(hostPort("0.0.0.0:0", /*allow_zero=*/true).port == 0);
}

TEST_CASE("parseHostPort rejects bad forms and ports", "[sys][host_port]") {
  CHECK_THAT(hostPortError("localhost"), Catch::Contains("has no port"));
  CHECK_THAT(hostPortError("localhost:"), Catch::Contains("has no port"));
  CHECK_THAT(hostPortError(":80"), Catch::Contains("has no host"));
  CHECK_THAT(hostPortError("host:0"), Catch::Contains("out of range (1..65535)"));
  CHECK_THAT(hostPortError("host:65536"), Catch::Contains("port 65536 is out of range"));
  CHECK_THAT(hostPortError("host:99999999999999999999999"), Catch::Contains("out of range"));
  CHECK_THAT(hostPortError("host:http"), Catch::Contains("port 'http' is not a number"));
  CHECK_THAT(hostPortError("host:-1"), Catch::Contains("is not a number"));
  CHECK_THAT(hostPortError("::1:80"), Catch::Contains("IPv6 addresses need brackets"));
  CHECK_THAT(hostPortError("[nope]:80"), Catch::Contains("not an IPv6 address"));
  CHECK_THAT(hostPortError("[::1:80"), Catch::Contains("bad IPv6 part"));
  CHECK_THAT(hostPortError("127.300.1.1:80"), Catch::Contains("not a valid IPv4 address"));
  CHECK_THAT(hostPortError("bad host:80"), Catch::Contains("not a valid host name"));
}

TEST_CASE("HostPort::toString reads back, with brackets for IPv6", "[sys][host_port]") {
  for (const char* text : {"127.0.0.1:5140", "[::1]:80", "collector.example.com:1"}) {
    CHECK(hostPort(text).toString() == text);
  }
}

TEST_CASE("numericAddress takes literal IPs and localhost, never a name", "[sys][host_port]") {
  auto v4 = numericAddress(hostPort("127.0.0.1:9880"));
  REQUIRE(v4.ok());
  CHECK(v4->ss_family == AF_INET);
  CHECK(ntohs(reinterpret_cast<sockaddr_in*>(&v4.value())->sin_port) == 9880);
  auto v6 = numericAddress(hostPort("[::1]:1"));
  REQUIRE(v6.ok());
  CHECK(v6->ss_family == AF_INET6);
  auto local = numericAddress(hostPort("localhost:2"));
  REQUIRE(local.ok());
  CHECK(local->ss_family == AF_INET);
  CHECK_FALSE(numericAddress(hostPort("collector.example.com:1")).ok());
}

}  // namespace
TEST_CASE("socketAddressText writes IPv4, bracketed IPv6, and ? for other families",
          "[sys][host_port]") {
  auto v4 = numericAddress(HostPort{"127.0.0.1", 5140});
  REQUIRE(v4.ok());
  CHECK(socketAddressText(v4.value()) == "127.0.0.1:5140");
  auto v6 = numericAddress(HostPort{"::1", 80});
  REQUIRE(v6.ok());
  CHECK(socketAddressText(v6.value()) == "[::1]:80");
  sockaddr_storage unix_ss{};
  unix_ss.ss_family = AF_UNIX;
  CHECK(socketAddressText(unix_ss) == "?");
}

}  // namespace logsplice::sys
