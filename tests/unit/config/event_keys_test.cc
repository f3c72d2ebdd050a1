// The config keys of event outputs: agent.hostname, an input's `fields` and `multiline`, and a
// tcp output's `format`, `framing`, `facility`, `severity` and `app_name`.
#include "config/event_keys.h"

#include <catch2/catch.hpp>

#include "tests/unit/config/config_test_helpers.h"
#include <sstream>
#include <string>

#include "config/parse.h"

namespace logsplice::config {
namespace {

// Parses `text`, expects exactly one error, with message `message`, at line:column.
void onlyError(const std::string& text, const std::string& message, int line, int column) {
  ParseResult result = parse(text);
  INFO("errors:\n" << allErrors(result));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message == message);
  CHECK(result.errors[0].file == "test.yaml");
  CHECK(result.errors[0].mark.line == line);
  CHECK(result.errors[0].mark.column == column);
  CHECK_FALSE(result.config.has_value());
}

// A config with one input (extra keys `input`, 4-space indented) and one tcp output (extra
// keys `output`). The input's extra keys start on line 4, the output's on line 9 plus the
// number of input lines.
std::string config(const std::string& input, const std::string& output) {
  return "inputs:\n"
         "  - name: app\n"
         "    paths: [\"/var/log/app.log\"]\n" +
         input +
         "outputs:\n"
         "  - name: central\n"
         "    type: tcp\n"
         "    addresses: [\"127.0.0.1:5140\"]\n"
         "    inputs: [app]\n" +
         output;
}

TEST_CASE("agent.hostname defaults to the machine's host name", "[config][events]") {
  Config c = parseOk(config("", ""));
  CHECK(c.agent.hostname == machineHostname());
  CHECK_FALSE(c.agent.hostname.empty());
  Config with_agent = parseOk("agent: { data_dir: /x }\n" + config("", ""));
  CHECK(with_agent.agent.hostname == machineHostname());
}

TEST_CASE("agent.hostname can be set, not emptied", "[config][events]") {
  Config c = parseOk("agent:\n  hostname: web-1.example\n" + config("", ""));
  CHECK(c.agent.hostname == "web-1.example");
  onlyError("agent:\n  hostname: ''\n" + config("", ""), "'hostname' must not be empty", 2, 13);
  onlyError("agent:\n  hostname: [a]\n" + config("", ""), "'hostname' must be a string", 2, 13);
}

TEST_CASE("input fields keep their order and string values", "[config][events]") {
  Config c = parseOk(config("    fields: { env: prod, dc: eu-1, rack: 7, note: '' }\n", ""));
  REQUIRE(c.inputs[0].fields.size() == 4);
  CHECK(c.inputs[0].fields[0] == std::pair<std::string, std::string>("env", "prod"));
  CHECK(c.inputs[0].fields[1] == std::pair<std::string, std::string>("dc", "eu-1"));
  CHECK(c.inputs[0].fields[2] == std::pair<std::string, std::string>("rack", "7"));
  CHECK(c.inputs[0].fields[3] == std::pair<std::string, std::string>("note", ""));
  CHECK(parseOk(config("", "")).inputs[0].fields.empty());
}

TEST_CASE("input field keys must be SD parameter names", "[config][events]") {
  const std::string name_rule =
      " may only contain printable ASCII characters other than '=', ']', '\"' and space (an "
      "RFC 5424 SD parameter name)";
  onlyError(config("    fields:\n      'a b': x\n", ""), "field 'a b'" + name_rule, 5, 7);
  onlyError(config("    fields:\n      'a=b': x\n", ""), "field 'a=b'" + name_rule, 5, 7);
  onlyError(config("    fields:\n      'a]': x\n", ""), "field 'a]'" + name_rule, 5, 7);
  onlyError(config("    fields:\n      'a\"': x\n", ""), "field 'a\"'" + name_rule, 5, 7);
  onlyError(config("    fields:\n      \"caf\\xE9\": x\n", ""), "field 'caf\xC3\xA9'" + name_rule,
            5, 7);
  onlyError(config("    fields:\n      '': x\n", ""),
            "field '' must be 1 to 32 characters long (an RFC 5424 SD parameter name)", 5, 7);
  std::string long_key(33, 'k');
  onlyError(config("    fields:\n      " + long_key + ": x\n", ""),
            "field '" + long_key +
                "' must be 1 to 32 characters long (an RFC 5424 SD parameter "
                "name)",
            5, 7);
  Config ok = parseOk(config("    fields:\n      " + std::string(32, 'k') + ": x\n", ""));
  CHECK(ok.inputs[0].fields.size() == 1);
  CHECK(fieldKeyProblem("a.b-c_d@1:x/y") == "");
}

TEST_CASE("input field keys may not repeat the fixed keys", "[config][events]") {
  for (std::string_view key : kReservedFieldKeys) {
    onlyError(config("    fields:\n      " + std::string(key) + ": x\n", ""),
              "field '" + std::string(key) + "' is a key every event already has", 5, 7);
  }
}

TEST_CASE("bad input fields are reported", "[config][events]") {
  onlyError(config("    fields: [a, b]\n", ""), "'fields' must be a map of key: string value", 4,
            13);
  onlyError(config("    fields:\n      env: [a]\n", ""), "field 'env' must have a string value", 5,
            12);
  onlyError(config("    fields:\n      env:\n", ""), "field 'env' must have a string value", 5, 7);
  onlyError(config("    fields:\n      env: a\n      env: b\n", ""),
            "duplicate key 'env' in 'fields' (first at 5:7)", 6, 7);
}

TEST_CASE("multiline takes a pattern, a timeout and a size", "[config][events]") {
  Config c =
      parseOk(config("    multiline:\n"
                     "      start_pattern: '^\\d{4}-\\d{2}-\\d{2} '\n"
                     "      timeout: 250ms\n"
                     "      max_bytes: 64KiB\n",
                     ""));
  REQUIRE(c.inputs[0].multiline.has_value());
  CHECK(c.inputs[0].multiline->start_pattern == "^\\d{4}-\\d{2}-\\d{2} ");
  CHECK(c.inputs[0].multiline->start_pattern_mark.line == 5);
  CHECK(c.inputs[0].multiline->timeout == Millis(250));
  CHECK(c.inputs[0].multiline->max_bytes == 64 * 1024);

  Config defaults = parseOk(config("    multiline: { start_pattern: '^\\S' }\n", ""));
  REQUIRE(defaults.inputs[0].multiline.has_value());
  CHECK(defaults.inputs[0].multiline->timeout == Millis(1000));
  CHECK(defaults.inputs[0].multiline->max_bytes == 1024 * 1024);
  CHECK_FALSE(parseOk(config("", "")).inputs[0].multiline.has_value());
}

TEST_CASE("a bad multiline pattern is an error at the pattern, with its offset",
          "[config][events]") {
  onlyError(config("    multiline:\n      start_pattern: '^(\\d+'\n", ""),
            "'multiline.start_pattern': invalid regex at offset 5 of '^(\\d+': missing closing "
            "parenthesis",
            5, 22);
  onlyError(config("    multiline:\n      start_pattern: 'a{2,1}'\n", ""),
            "'multiline.start_pattern': invalid regex at offset 5 of 'a{2,1}': numbers out of "
            "order in {} quantifier",
            5, 22);
  onlyError(config("    multiline:\n      start_pattern: ''\n", ""),
            "'multiline.start_pattern' must not be empty", 5, 22);
  std::optional<RegexProblem> problem = regexProblem("[a-");
  REQUIRE(problem.has_value());
  CHECK(problem->offset == 3);
  CHECK_FALSE(regexProblem("^\\d{4}").has_value());
}

TEST_CASE("bad multiline keys are reported", "[config][events]") {
  onlyError(config("    multiline: { timeout: 1s }\n", ""),
            "missing required key 'start_pattern' in 'multiline' of input 'app'", 4, 16);
  onlyError(config("    multiline: { start_pattern: x, max_byte: 1 }\n", ""),
            "unknown key 'max_byte' in 'multiline' of input 'app' (did you mean 'max_bytes'?)", 4,
            36);
  onlyError(config("    multiline: { start_pattern: x, timeout: 5 }\n", ""),
            "'multiline.timeout': duration '5' needs a unit (ms, s, m, h or d), e.g. '5s'", 4, 45);
  onlyError(config("    multiline: { start_pattern: x, max_bytes: 0 }\n", ""),
            "'multiline.max_bytes' must be at least 1 byte", 4, 47);
  onlyError(config("    multiline: ^x\n", ""), "'multiline' must be a map", 4, 16);
  onlyError(config("    multiline: { start_pattern: [x] }\n", ""),
            "'multiline.start_pattern' must be a string (a PCRE2 regex)", 4, 33);
}

TEST_CASE("tcp outputs take a format, raw by default", "[config][events]") {
  Config c = parseOk(config("", ""));
  const auto& raw = std::get<TcpOutput>(c.outputs[0].kind);
  CHECK(raw.format == EventFormat::kRaw);
  CHECK(raw.framing == Framing::kOctetCounting);
  CHECK(raw.facility == 1);
  CHECK(raw.severity == 6);
  CHECK(raw.app_name.empty());
  CHECK(raw.framing_mark.line == 0);
  CHECK(std::get<TcpOutput>(parseOk(config("", "    format: json\n")).outputs[0].kind).format ==
        EventFormat::kJson);
  CHECK(std::get<TcpOutput>(parseOk(config("", "    format: raw\n")).outputs[0].kind).format ==
        EventFormat::kRaw);
  onlyError(config("", "    format: xml\n"),
            "'format': invalid value 'xml' (expected raw, syslog or json)", 9, 13);
}

TEST_CASE("syslog outputs take framing, facility, severity and app_name", "[config][events]") {
  Config c = parseOk(config("",
                            "    format: syslog\n"
                            "    framing: lf\n"
                            "    facility: local3\n"
                            "    severity: warning\n"
                            "    app_name: my-app\n"));
  const auto& tcp = std::get<TcpOutput>(c.outputs[0].kind);
  CHECK(tcp.format == EventFormat::kSyslog);
  CHECK(tcp.framing == Framing::kLf);
  CHECK(tcp.framing_mark.line == 10);
  CHECK(tcp.framing_mark.column == 14);
  CHECK(tcp.facility == 19);
  CHECK(tcp.severity == 4);
  CHECK(tcp.app_name == "my-app");
  Config numbers = parseOk(config("", "    format: syslog\n    facility: 23\n    severity: 0\n"));
  CHECK(std::get<TcpOutput>(numbers.outputs[0].kind).facility == 23);
  CHECK(std::get<TcpOutput>(numbers.outputs[0].kind).severity == 0);
}

TEST_CASE("every facility and severity name is known", "[config][events]") {
  const char* facilities[] = {"kern",   "user",   "mail",   "daemon", "auth",     "syslog",
                              "lpr",    "news",   "uucp",   "cron",   "authpriv", "ftp",
                              "ntp",    "audit",  "alert",  "clock",  "local0",   "local1",
                              "local2", "local3", "local4", "local5", "local6",   "local7"};
  for (int i = 0; i < 24; ++i) {
    CHECK(facilityFromText(facilities[i]) == i);
    CHECK(facilityFromText(std::to_string(i)) == i);
  }
  const char* severities[] = {"emerg",   "alert",  "crit", "err",
                              "warning", "notice", "info", "debug"};
  for (int i = 0; i < 8; ++i) {
    CHECK(severityFromText(severities[i]) == i);
    CHECK(severityFromText(std::to_string(i)) == i);
  }
  CHECK(severityFromText("error") == 3);
  CHECK(severityFromText("warn") == 4);
  CHECK_FALSE(facilityFromText("24").has_value());
  CHECK_FALSE(facilityFromText("-1").has_value());
  CHECK_FALSE(facilityFromText("local8").has_value());
  CHECK_FALSE(severityFromText("8").has_value());
  CHECK_FALSE(severityFromText("").has_value());
}

TEST_CASE("bad syslog settings are reported", "[config][events]") {
  onlyError(config("", "    format: syslog\n    framing: newline\n"),
            "'framing': invalid value 'newline' (expected octet-counting or lf)", 10, 14);
  onlyError(config("", "    format: syslog\n    facility: local8\n"),
            "'facility': invalid value 'local8' (expected kern..local7 or 0-23)", 10, 15);
  onlyError(config("", "    format: syslog\n    facility: 24\n"),
            "'facility': invalid value '24' (expected kern..local7 or 0-23)", 10, 15);
  onlyError(config("", "    format: syslog\n    severity: fatal\n"),
            "'severity': invalid value 'fatal' (expected emerg..debug or 0-7)", 10, 15);
  onlyError(config("", "    format: syslog\n    app_name: ''\n"), "'app_name' must not be empty",
            10, 15);
}

TEST_CASE("syslog settings on a raw or json output are errors", "[config][events]") {
  onlyError(config("", "    format: json\n    framing: lf\n"),
            "'framing' applies to 'format: syslog' only", 10, 5);
  onlyError(config("", "    facility: daemon\n"), "'facility' applies to 'format: syslog' only", 9,
            5);
  onlyError(config("", "    format: raw\n    severity: info\n"),
            "'severity' applies to 'format: syslog' only", 10, 5);
  onlyError(config("", "    format: json\n    app_name: x\n"),
            "'app_name' applies to 'format: syslog' only", 10, 5);
}

TEST_CASE("event keys on an archive output are keys of tcp outputs", "[config][events]") {
  ParseResult r = parse(R"(inputs:
  - { name: app, paths: ["/a"] }
outputs:
  - { name: local, type: archive, dir: /d, inputs: [app], format: json }
)");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message == "unknown key 'format' in output 'local' (only tcp outputs take it)");
}

TEST_CASE("LF framing cannot carry multiline events", "[config][events]") {
  const std::string multiline = "    multiline: { start_pattern: '^\\S' }\n";
  onlyError(config(multiline, "    format: syslog\n    framing: lf\n"),
            "'framing: lf' cannot carry the multiline events of input 'app' (a newline would "
            "split them); use 'framing: octet-counting' in output 'central'",
            11, 14);
  // Octet counting, JSON (newlines escaped) and LF without multiline are all fine.
  parseOk(config(multiline, "    format: syslog\n    framing: octet-counting\n"));
  parseOk(config(multiline, "    format: syslog\n"));
  parseOk(config(multiline, "    format: json\n"));
  parseOk(config("", "    format: syslog\n    framing: lf\n"));
}

TEST_CASE("check lists every event-key error in file order", "[config][events]") {
  ParseResult r =
      parse(config("    fields: { 'bad key': x }\n"
                   "    multiline: { start_pattern: '(' }\n",
                   "    format: syslog\n"
                   "    framing: lf\n"
                   "    facility: nope\n"));
  INFO(allErrors(r));
  REQUIRE(r.errors.size() == 4);
  CHECK(r.errors[0].mark.line == 4);
  CHECK(r.errors[0].message.find("field 'bad key'") == 0);
  CHECK(r.errors[1].mark.line == 5);
  CHECK(r.errors[1].message.find("invalid regex at offset 1") != std::string::npos);
  CHECK(r.errors[2].mark.line == 12);
  CHECK(r.errors[2].message.find("'framing: lf' cannot carry") == 0);
  CHECK(r.errors[3].mark.line == 13);
  CHECK(r.errors[3].message.find("'facility'") == 0);
}

}  // namespace
}  // namespace logsplice::config
