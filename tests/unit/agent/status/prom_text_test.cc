#include "agent/status/prom_text.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

using namespace logsplice::agent;

TEST_CASE("prom text builder writes HELP, TYPE and escaped labels", "[prom_text]") {
  PromTextBuilder b;
  b.family("logsplice_file_lag_bytes", "Bytes a sink is behind.\nPer \\file\\.", PromType::kGauge);
  b.sample("logsplice_file_lag_bytes",
           {{"sink", "central"}, {"path", "/var/log/a \"quoted\"\\dir\nx.log"}}, 42);
  b.single("logsplice_open_fds", "Open fds.", PromType::kGauge, 7);
  b.family("logsplice_sink_bytes_sent_total", "Bytes sent.", PromType::kCounter);
  b.sample("logsplice_sink_bytes_sent_total", {{"sink", "a"}}, 1.5);

  CHECK(b.text() ==
        "# HELP logsplice_file_lag_bytes Bytes a sink is behind.\\nPer \\\\file\\\\.\n"
        "# TYPE logsplice_file_lag_bytes gauge\n"
        "logsplice_file_lag_bytes{sink=\"central\",path=\"/var/log/a "
        "\\\"quoted\\\"\\\\dir\\nx.log\"} 42\n"
        "# HELP logsplice_open_fds Open fds.\n"
        "# TYPE logsplice_open_fds gauge\n"
        "logsplice_open_fds 7\n"
        "# HELP logsplice_sink_bytes_sent_total Bytes sent.\n"
        "# TYPE logsplice_sink_bytes_sent_total counter\n"
        "logsplice_sink_bytes_sent_total{sink=\"a\"} 1.5\n");
}

TEST_CASE("prom values: integers exact, others round-trip, special values", "[prom_text]") {
  CHECK(formatPromValue(0) == "0");
  CHECK(formatPromValue(-3) == "-3");
  CHECK(formatPromValue(1e300) == "1e+300");  // beyond 2^53: shortest round-trip form
  CHECK(formatPromValue(9007199254740991.0) == "9007199254740991");
  CHECK(formatPromValue(0.1) == "0.1");
  CHECK(formatPromValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(formatPromValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(formatPromValue(std::nan("")) == "NaN");
}

TEST_CASE("prom text parse round-trips what the builder writes", "[prom_text]") {
  const std::string tricky = "a\\b \"c\" {d=e,f}\nnext line";
  PromTextBuilder b;
  b.family("m_total", "help", PromType::kCounter);
  b.sample("m_total", {{"sink", "s1"}, {"path", tricky}}, 123456789);
  b.sample("m_total", {{"sink", "s2"}, {"path", ""}}, 0.25);
  b.single("plain", "no labels", PromType::kUntyped, -1);
  b.single("inf", "inf", PromType::kGauge, std::numeric_limits<double>::infinity());

  auto parsed = parsePromText(b.text());
  REQUIRE(parsed.ok());
  const auto& s = parsed.value();
  REQUIRE(s.size() == 4);
  CHECK(s[0].name == "m_total");
  CHECK(s[0].label("sink") == "s1");
  CHECK(s[0].label("path") == tricky);
  CHECK(s[0].value == 123456789);
  CHECK(s[1].label("path").empty());
  CHECK(s[1].labels.count("path") == 1);
  CHECK(s[1].value == 0.25);
  CHECK(s[2].name == "plain");
  CHECK(s[2].labels.empty());
  CHECK(s[2].value == -1);
  CHECK(std::isinf(s[3].value));
  CHECK(s[0].label("absent").empty());
}

TEST_CASE("prom text parse accepts the format's optional parts", "[prom_text]") {
  auto parsed = parsePromText(
      "# a comment\n"
      "\n"
      "  spaced { a = \"1\" , b=\"2\", } 3 1700000000000\r\n"
      "nan_metric NaN\n"
      "neg -Inf\n"
      "plus +7e3\n"
      "recording:rule_total 1");  // no final newline
  REQUIRE(parsed.ok());
  const auto& s = parsed.value();
  REQUIRE(s.size() == 5);
  CHECK(s[0].name == "spaced");
  CHECK(s[0].label("a") == "1");
  CHECK(s[0].label("b") == "2");
  CHECK(s[0].value == 3);
  CHECK(std::isnan(s[1].value));
  CHECK(s[2].value == -std::numeric_limits<double>::infinity());
  CHECK(s[3].value == 7000);
  CHECK(s[4].name == "recording:rule_total");
}

TEST_CASE("prom text parse errors name the line", "[prom_text]") {
  struct Case {
    const char* text;
    const char* expect;
  };
  Case cases[] = {
      {"ok 1\n{a=\"b\"} 1\n", "line 2: expected a metric name"},
      {"m{a=\"b} 1\n", "line 1: bad label value"},
      {"m{a=\"\\x\"} 1\n", "line 1: bad label value"},
      {"m{a} 1\n", "line 1: expected '='"},
      {"m{a=b} 1\n", "line 1: bad label value"},
      {"m{a=\"b\" c=\"d\"} 1\n", "line 1: expected ',' or '}'"},
      {"m\n", "line 1: bad sample value ''"},
      {"m one\n", "line 1: bad sample value 'one'"},
      {"m 1 2 3\n", "line 1: unexpected text after timestamp"},
      {"m 1 soon\n", "line 1: unexpected text after value"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = parsePromText(c.text);
    REQUIRE_FALSE(parsed.ok());
    CHECK_THAT(parsed.error().toString(), Catch::Contains(c.expect));
  }
}

TEST_CASE("prom names are validated", "[prom_text]") {
  CHECK(isValidPromMetricName("logsplice_open_fds"));
  CHECK(isValidPromMetricName("a:b_c"));
  CHECK_FALSE(isValidPromMetricName("1abc"));
  CHECK_FALSE(isValidPromMetricName("a-b"));
  CHECK_FALSE(isValidPromMetricName(""));
  CHECK(isValidPromLabelName("sink"));
  CHECK_FALSE(isValidPromLabelName("a:b"));
  CHECK_FALSE(isValidPromLabelName("9"));
}
