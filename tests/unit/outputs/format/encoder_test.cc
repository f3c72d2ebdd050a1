#include "outputs/format/encoder.h"

#include <catch2/catch.hpp>
#include <string>

#include "outputs/format/framing.h"
#include "tests/unit/outputs/format/json_checker.h"

namespace logsplice::outputs::format {
namespace {

constexpr int64_t kTime = 1796073600LL * 1000000 + 123456;  // 2026-11-30T21:20:00.123456Z

struct Configs {
  config::AgentConfig agent;
  config::InputConfig input;
  config::TcpOutput tcp;
  Configs() {
    agent.hostname = "web-1";
    input.name = "app";
    input.fields = {{"env", "prod"}};
  }
};

TEST_CASE("contextFor takes host, input, fields and syslog settings from the config",
          "[format][encoder]") {
  Configs c;
  c.tcp.facility = 16;
  c.tcp.severity = 3;
  EventContext context = contextFor(c.agent, c.input, c.tcp);
  CHECK(context.host == "web-1");
  CHECK(context.app_name == "app");  // no app_name: the input's name
  CHECK(context.input == "app");
  CHECK(context.facility == 16);
  CHECK(context.severity == 3);
  REQUIRE(context.fields.size() == 1);
  CHECK(context.fields[0].first == "env");
  c.tcp.app_name = "payments";
  CHECK(contextFor(c.agent, c.input, c.tcp).app_name == "payments");
}

TEST_CASE("syslog with octet counting is the formatter's message behind its length",
          "[format][encoder]") {
  Configs c;
  EventContext context = contextFor(c.agent, c.input, c.tcp);
  EventEncoder encoder(config::EventFormat::kSyslog, config::Framing::kOctetCounting, context);
  SyslogFormatter reference(context);
  for (std::string_view message : {"hello", "", "multi\nline \xC3\xA9 event"}) {
    for (bool partial : {false, true}) {
      Event event{message, "/var/log/app.log", 42, kTime, partial};
      std::string expected_message;
      (void)reference.append(event, expected_message);
      std::string expected;
      appendFramed(Framing::kOctetCounting, expected_message, expected);
      std::string out = "before|";
      (void)encoder.append(event, out);
      CHECK(out == "before|" + expected);
    }
  }
}

TEST_CASE("syslog with LF framing ends each message with a newline", "[format][encoder]") {
  Configs c;
  EventContext context = contextFor(c.agent, c.input, c.tcp);
  EventEncoder encoder(config::EventFormat::kSyslog, config::Framing::kLf, context);
  std::string out;
  (void)encoder.append(Event{"one", "/f", 0, kTime, false}, out);
  (void)encoder.append(Event{"two", "/f", 4, kTime, false}, out);
  CHECK(out ==
        "<14>1 2026-11-30T21:20:00.123456Z web-1 app - - [logsplice@32473 file=\"/f\" "
        "offset=\"0\" input=\"app\" env=\"prod\"] one\n"
        "<14>1 2026-11-30T21:20:00.123456Z web-1 app - - [logsplice@32473 file=\"/f\" "
        "offset=\"4\" input=\"app\" env=\"prod\"] two\n");
}

TEST_CASE("json events are one object per line, framing aside", "[format][encoder]") {
  Configs c;
  EventContext context = contextFor(c.agent, c.input, c.tcp);
  // `framing` applies to syslog only; JSON is NDJSON whatever it says.
  EventEncoder encoder(config::EventFormat::kJson, config::Framing::kOctetCounting, context);
  std::string out;
  CHECK(encoder.append(Event{"multi\nline \xFF", "/f", 9, kTime, true}, out) == 1);
  std::optional<test::JsonObject> object = test::JsonReader(out).object();
  REQUIRE(object.has_value());
  CHECK(test::find(*object, "message")->text == "multi\nline \xEF\xBF\xBD");
  CHECK(test::find(*object, "env")->text == "prod");
  CHECK(test::find(*object, "partial") != nullptr);
}

}  // namespace
}  // namespace logsplice::outputs::format
