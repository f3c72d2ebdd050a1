// `type: relp` outputs: every key read (the transport keys shared with tcp, window, timeout),
// defaults (syslog with octet counting, window 4096, timeout 10 s), and bad keys and values
// reported at their file:line:col.

#include "config/relp_keys.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/config/config_test_helpers.h"

using namespace logsplice;
using namespace logsplice::config;

namespace {

std::string withRelp(const std::string& keys) {
  return "inputs:\n"
         "  - name: app\n"
         "    paths: [/var/log/app.log]\n"
         "outputs:\n"
         "  - name: central\n"
         "    type: relp\n"
         "    inputs: [app]\n"
         "    addresses: [\"logs.example:2514\", \"127.0.0.1:2515\"]\n" +
         keys;
}

const RelpOutput& relpOf(const Config& c) {
  const auto* relp = std::get_if<RelpOutput>(&c.outputs.at(0).kind);
  REQUIRE(relp != nullptr);
  return *relp;
}

}  // namespace

TEST_CASE("relp: every key is read", "[config][relp]") {
  Config c =
      parseOk(withRelp("    window: 512\n"
                       "    timeout: 3s\n"
                       "    backoff: { initial: 50ms, max: 2s }\n"
                       "    connect_timeout: 1s\n"
                       "    keepalive: 10s\n"
                       "    facility: local3\n"
                       "    severity: warning\n"
                       "    app_name: web\n"));
  const RelpOutput& r = relpOf(c);
  CHECK(r.window == 512);
  CHECK(r.timeout == Millis(3000));
  REQUIRE(r.tcp.addresses.size() == 2);
  CHECK(r.tcp.addresses[0].toString() == "logs.example:2514");
  CHECK(r.tcp.backoff.initial == Millis(50));
  CHECK(r.tcp.backoff.max == Millis(2000));
  CHECK(r.tcp.connect_timeout == Millis(1000));
  CHECK(r.tcp.keepalive == Millis(10000));
  CHECK(r.tcp.facility == 19);
  CHECK(r.tcp.severity == 4);
  CHECK(r.tcp.app_name == "web");
  CHECK(r.tcp.format == EventFormat::kSyslog);
  CHECK(r.tcp.framing == Framing::kOctetCounting);
  CHECK_FALSE(r.tcp.tls.has_value());
}

TEST_CASE("relp: defaults; multiline inputs are allowed", "[config][relp]") {
  Config c = parseOk(
      "inputs:\n"
      "  - name: app\n"
      "    paths: [/var/log/app.log]\n"
      "    multiline: { start_pattern: '^\\S' }\n"
      "outputs:\n"
      "  - name: central\n"
      "    type: relp\n"
      "    inputs: [app]\n"
      "    addresses: [\"127.0.0.1:2514\"]\n");
  const RelpOutput& r = relpOf(c);
  CHECK(r.window == 4096);
  CHECK(r.timeout == Millis(10000));
  CHECK(r.tcp.format == EventFormat::kSyslog);
  CHECK(r.tcp.framing == Framing::kOctetCounting);
  CHECK(r.tcp.facility == 1);
  CHECK(r.tcp.severity == 6);
}

TEST_CASE("relp: bad keys and values are errors at their line and column", "[config][relp]") {
  struct Case {
    std::string keys;
    int line, column;
    std::string message;
  };
  const Case cases[] = {
      {"    window: 0\n", 9, 13, "'window' must be at least 1"},
      {"    window: lots\n", 9, 13, "'window' must be a whole number, not 'lots'"},
      {"    window: 100000\n", 9, 13, "'window' must be at most 65536"},
      {"    timeout: 10ms\n", 9, 14, "'timeout'"},
      {"    format: json\n", 9, 5, "'format'"},
      {"    framing: lf\n", 9, 5, "'framing'"},
      {"    dir: /tmp\n", 9, 5, "'dir'"},
      {"    backoff: { initial: 2s, max: 1s }\n", 5, 5, "'backoff.initial' (2s)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.keys);
    ParseResult r = parse(withRelp(c.keys));
    INFO(allErrors(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].mark.line == c.line);
    CHECK(r.errors[0].mark.column == c.column);
    CHECK(r.errors[0].message.find(c.message) != std::string::npos);
    CHECK(r.errors[0].toString().rfind("test.yaml:" + std::to_string(c.line) + ":", 0) == 0);
  }
}

TEST_CASE("relp: a tls block is read as for tcp; ktls: require is refused", "[config][relp]") {
  ParseResult r =
      parse(withRelp("    tls:\n"
                     "      verify: false\n"
                     "      ktls: require\n"));
  INFO(allErrors(r));
  // The relp refusal comes first, at the tls map; a kernel without kTLS also gets the tls
  // block's own refusal of `require` (config/tls_keys.cc), at the ktls key.
  REQUIRE(!r.errors.empty());
  REQUIRE(r.errors.size() <= 2);
  CHECK(r.errors[0].mark.line == 10);
  CHECK(r.errors[0].message.find("cannot apply to a relp output") != std::string::npos);
  if (r.errors.size() == 2) CHECK(r.errors[1].message.find("offers no kTLS") != std::string::npos);
  Config c =
      parseOk(withRelp("    tls:\n"
                       "      verify: false\n"));
  REQUIRE(relpOf(c).tcp.tls.has_value());
  CHECK_FALSE(relpOf(c).tcp.tls->verify);
}
