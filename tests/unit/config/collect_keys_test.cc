#include "config/collect_keys.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/config/config_test_helpers.h"

namespace logsplice::config {
namespace {

std::string errorsOf(const CollectParseResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.toString() + "\n";
  return out;
}

}  // namespace

TEST_CASE("collect config: a full section", "[collect]") {
  auto r = parseCollectConfigString(R"(collect:
  listen: 127.0.0.1:7514
  dir: /srv/mirror
  tokens: { web-1: "0123456789abcdef", "*": "fallback-token" }
  fsync: { interval: 250ms, bytes: 8MiB }
  limits: { max_frame: 2MiB, max_connections: 10, max_streams: 20, idle_timeout: 5s, min_free: 1GiB }
  metrics: { listen: 127.0.0.1:0 }
  log_level: debug
)",
                                    "c.yaml");
  INFO(errorsOf(r));
  REQUIRE(r.ok());
  const CollectConfig& c = *r.config;
  CHECK(c.listen.port == 7514);
  CHECK(c.dir == "/srv/mirror");
  CHECK(c.tokens.at("web-1") == "0123456789abcdef");
  CHECK(c.tokens.at("*") == "fallback-token");
  CHECK(c.fsync_interval == Millis(250));
  CHECK(c.fsync_bytes == 8ull << 20);
  CHECK(c.max_frame == 2ull << 20);
  CHECK(c.max_connections == 10);
  CHECK(c.max_streams == 20);
  CHECK(c.idle_timeout == Millis(5000));
  CHECK(c.min_free == 1ull << 30);
  REQUIRE(c.metrics_listen);
  CHECK(c.log_level == "debug");
}

TEST_CASE("collect config: errors name file:line:col", "[collect]") {
  auto r = parseCollectConfigString(R"(collect:
  listen: 127.0.0.1:7514
  dir: /srv/mirror
  tokens: { "../x": "0123456789abcdef", short: "abc" }
  limits: { max_frame: 1GiB, bogus: 1 }
)",
                                    "c.yaml");
  std::string text = errorsOf(r);
  INFO(text);
  CHECK_FALSE(r.ok());
  CHECK(text.find("c.yaml:4:13: host name '../x'") != std::string::npos);
  CHECK(text.find("c.yaml:4:48: the token of host 'short' must have 8 to 512") !=
        std::string::npos);
  CHECK(text.find("c.yaml:5:24: 'limits.max_frame' must be at most 64MiB") != std::string::npos);
  CHECK(text.find("c.yaml:5:30: unknown key 'bogus'") != std::string::npos);  // unknown key
}

TEST_CASE("collect config: limits.min_free defaults to 64MiB, 0 turns it off, junk is an error",
          "[collect]") {
  const std::string head =
      "collect:\n  listen: 127.0.0.1:7514\n  dir: /srv/mirror\n"
      "  tokens: { web-1: \"0123456789abcdef\" }\n";
  auto plain = parseCollectConfigString(head, "c.yaml");
  REQUIRE(plain.ok());
  CHECK(plain.config->min_free == 64ull << 20);
  auto off = parseCollectConfigString(head + "  limits: { min_free: 0 }\n", "c.yaml");
  REQUIRE(off.ok());
  CHECK(off.config->min_free == 0);
  auto bad = parseCollectConfigString(head + "  limits: { min_free: -5MiB }\n", "c.yaml");
  std::string text = errorsOf(bad);
  INFO(text);
  CHECK_FALSE(bad.ok());
  CHECK(text.find("c.yaml:5:23: 'limits.min_free'") != std::string::npos);
}

TEST_CASE("collect config: listen, dir and tokens are required", "[collect]") {
  auto r = parseCollectConfigString("collect: { log_level: info }\n", "c.yaml");
  std::string text = errorsOf(r);
  INFO(text);
  CHECK_FALSE(r.ok());
  CHECK(text.find("'listen'") != std::string::npos);
  CHECK(text.find("'dir'") != std::string::npos);
  CHECK(text.find("'tokens'") != std::string::npos);
}

TEST_CASE("type: logsplice output: tcp connection keys and a token", "[collect]") {
  Config c = parseOk(R"(inputs:
- name: app
  paths: [/var/log/app.log]
outputs:
- name: mirror
  type: logsplice
  addresses: [127.0.0.1:7514]
  token: "0123456789abcdef"
  backoff: { initial: 50ms, max: 1s }
  inputs: [app]
)");
  const auto* ls = std::get_if<LogspliceOutput>(&c.outputs[0].kind);
  REQUIRE(ls);
  CHECK(ls->token == "0123456789abcdef");
  CHECK(ls->tcp.addresses.size() == 1);
  CHECK(ls->tcp.backoff.initial == Millis(50));

  ParseResult bad = parse(R"(inputs:
- name: app
  paths: [/var/log/app.log]
outputs:
- name: mirror
  type: logsplice
  addresses: [127.0.0.1:7514]
  format: json
  inputs: [app]
)");
  CHECK_FALSE(bad.ok());
  std::string text = allErrors(bad);
  INFO(text);
  CHECK(text.find("'token'") != std::string::npos);
  CHECK(text.find("'format'") != std::string::npos);
}

}  // namespace logsplice::config

namespace logsplice::config {

TEST_CASE("type: logsplice output: backoff.initial above backoff.max is an error", "[collect]") {
  ParseResult bad = parse(R"(inputs:
- name: app
  paths: [/var/log/app.log]
outputs:
- name: mirror
  type: logsplice
  addresses: [127.0.0.1:7514]
  token: "0123456789abcdef"
  backoff: { initial: 2s, max: 1s }
  inputs: [app]
)");
  CHECK_FALSE(bad.ok());
  CHECK(allErrors(bad).find("'backoff.initial' (2s) is greater than 'backoff.max'") !=
        std::string::npos);
}

}  // namespace logsplice::config
