#include "outputs/format/syslog5424.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace logsplice::outputs::format {
namespace {

constexpr int64_t kTime = 1796073600LL * 1000000 + 123456;  // 2026-11-30T21:20:00.123456Z

std::string format(const EventContext& context, const Event& event) {
  SyslogFormatter formatter(context);
  std::string out;
  (void)formatter.append(event, out);
  return out;
}

Event event(std::string_view message = "hello", bool partial = false) {
  return Event{message, "/var/log/app.log", 1234, kTime, partial};
}

TEST_CASE("a syslog message has every RFC 5424 part", "[format][syslog]") {
  EventContext context{"web-1", "app", "nginx", 1, 6, {}};
  CHECK(format(context, event()) ==
        "<14>1 2026-11-30T21:20:00.123456Z web-1 app - - [logsplice@32473 "
        "file=\"/var/log/app.log\" offset=\"1234\" input=\"nginx\"] hello");
}

TEST_CASE("PRI is facility * 8 + severity", "[format][syslog]") {
  struct Case {
    int facility;
    int severity;
    std::string head;
  };
  const Case cases[] = {{0, 0, "<0>1 "},    {1, 6, "<14>1 "},   {3, 3, "<27>1 "},
                        {16, 5, "<133>1 "}, {23, 7, "<191>1 "}, {4, 2, "<34>1 "}};
  for (const Case& c : cases) {
    EventContext context{"h", "a", "i", c.facility, c.severity, {}};
    CHECK(SyslogFormatter(context).head() == c.head);
  }
  // Out of range values (config/ refuses them) fall back to user.info.
  EventContext bad{"h", "a", "i", 24, 8, {}};
  CHECK(SyslogFormatter(bad).head() == "<14>1 ");
}

TEST_CASE("the timestamp has six fraction digits, zero padded", "[format][syslog]") {
  EventContext context{"h", "a", "i", 1, 6, {}};
  SyslogFormatter formatter(context);
  auto stamp = [&](int64_t us) {
    std::string out;
    (void)formatter.append(Event{"m", "f", 0, us, false}, out);
    return out.substr(6, 27);
  };
  CHECK(stamp(kTime) == "2026-11-30T21:20:00.123456Z");
  CHECK(stamp(1796073600LL * 1000000 + 7) == "2026-11-30T21:20:00.000007Z");
  CHECK(stamp(1796073600LL * 1000000) == "2026-11-30T21:20:00.000000Z");
  CHECK(stamp(1796073600LL * 1000000 + 999999) == "2026-11-30T21:20:00.999999Z");
  CHECK(stamp(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(stamp(951782400LL * 1000000 + 1) == "2000-02-29T00:00:00.000001Z");  // leap day
  CHECK(stamp(-1) == "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("SD values escape quote, backslash and bracket", "[format][syslog]") {
  std::vector<FieldPair> fields{{"note", "a \"b\" \\c] d"}};
  EventContext context{"h", "a", "in]put", 1, 6, fields};
  std::string out = format(context, Event{"msg ] \" \\", "/x/\"q\"]\\.log", 0, kTime, false});
  CHECK(out.find("file=\"/x/\\\"q\\\"\\]\\\\.log\"") != std::string::npos);
  CHECK(out.find("input=\"in\\]put\"") != std::string::npos);
  CHECK(out.find("note=\"a \\\"b\\\" \\\\c\\] d\"") != std::string::npos);
  // MSG is never escaped.
  CHECK(out.ends_with("] msg ] \" \\"));
}

TEST_CASE("SD values have ill-formed UTF-8 replaced and counted", "[format][syslog]") {
  EventContext context{"h", "a", "i", 1, 6, {}};
  SyslogFormatter formatter(context);
  std::string out;
  CHECK(formatter.append(Event{"\xFF raw msg", "/log/\xC3\xA9\xFF", 0, kTime, false}, out) == 1);
  CHECK(out.find("file=\"/log/\xC3\xA9\xEF\xBF\xBD\"") != std::string::npos);
  CHECK(out.ends_with("] \xFF raw msg"));  // MSG bytes as they are
}

TEST_CASE("host and app names are PRINTUSASCII, cut to their limits, or '-'", "[format][syslog]") {
  SECTION("empty names are the NILVALUE") {
    EventContext context{"", "", "i", 1, 6, {}};
    CHECK(SyslogFormatter(context).names().starts_with(" - - - - ["));
  }
  SECTION("spaces, controls and each byte of a non-ASCII character become '_'") {
    EventContext context{"my host\t1", "caf\xC3\xA9 app", "i", 1, 6, {}};
    CHECK(SyslogFormatter(context).names().starts_with(" my_host_1 caf___app - - ["));
  }
  SECTION("long names are cut to 255 and 48 bytes") {
    std::string host(300, 'h');
    std::string app(60, 'a');
    EventContext context{host, app, "i", 1, 6, {}};
    CHECK(SyslogFormatter(context).names().starts_with(" " + std::string(255, 'h') + " " +
                                                       std::string(48, 'a') + " - - ["));
  }
  SECTION("names at the limit are kept whole") {
    std::string host(255, 'h');
    std::string app(48, 'a');
    std::string out;
    appendSyslogName(host, SyslogFormatter::kMaxHostname, out);
    CHECK(out == host);
    out.clear();
    appendSyslogName(app, SyslogFormatter::kMaxAppName, out);
    CHECK(out == app);
  }
}

TEST_CASE("fields follow the fixed params in config order", "[format][syslog]") {
  std::vector<FieldPair> fields{{"env", "prod"}, {"dc", "eu-1"}, {"empty", ""}};
  EventContext context{"h", "a", "nginx", 1, 6, fields};
  CHECK(format(context, event())
            .ends_with("input=\"nginx\" env=\"prod\" dc=\"eu-1\" empty=\"\"] hello"));
}

TEST_CASE("a partial event carries partial=\"true\"", "[format][syslog]") {
  std::vector<FieldPair> fields{{"env", "prod"}};
  EventContext context{"h", "a", "i", 1, 6, fields};
  CHECK(format(context, event("piece", true)).ends_with(" env=\"prod\" partial=\"true\"] piece"));
  CHECK(format(context, event("whole", false)).ends_with(" env=\"prod\"] whole"));
}

TEST_CASE("an empty message has no trailing space", "[format][syslog]") {
  EventContext context{"h", "a", "i", 1, 6, {}};
  CHECK(format(context, event("")).ends_with("input=\"i\"]"));
}

TEST_CASE("syslog messages append to the caller's buffer", "[format][syslog]") {
  EventContext context{"h", "a", "i", 1, 6, {}};
  SyslogFormatter formatter(context);
  std::string out = "x";
  (void)formatter.append(event("one"), out);
  size_t first = out.size();
  (void)formatter.append(event("two"), out);
  CHECK(out.substr(0, 6) == "x<14>1");
  CHECK(out.substr(first, 5) == "<14>1");
  CHECK(out.ends_with("] two"));
}

}  // namespace
}  // namespace logsplice::outputs::format

namespace logsplice::outputs::format {
namespace {

TEST_CASE("syslog formatting into a reused buffer does not allocate", "[format][syslog]") {
  std::vector<FieldPair> fields{{"env", "prod"}};
  EventContext context{"h", "a", "i", 1, 6, fields};
  SyslogFormatter formatter(context);
  std::string out;
  out.reserve(4096);
  const char* data = out.data();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    (void)formatter.append(event("a message"), out);
  }
  CHECK(out.data() == data);
  CHECK(out.capacity() == 4096);
}

}  // namespace
}  // namespace logsplice::outputs::format
