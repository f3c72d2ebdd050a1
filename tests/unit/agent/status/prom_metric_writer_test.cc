#include "agent/status/prom_metric_writer.h"

#include <catch2/catch.hpp>
#include <string>

using namespace logsplice::agent;
namespace sys = logsplice::sys;

namespace {

// Two stand-ins for components that report into the same families.
struct FakeTailer {
  std::string name;
  double files;
  void collectMetrics(sys::MetricWriter& w) const {
    w.gauge("logsplice_input_files_followed", "Files followed now.", {{"input", name}}, files);
    w.counter("logsplice_input_rotations_total", "Rotations seen.", {{"input", name}}, 2);
  }
};

}  // namespace

TEST_CASE("PromMetricWriter groups interleaved samples into one block per family",
          "[prom_metric_writer]") {
  PromMetricWriter w;
  w.gauge("logsplice_open_fds", "Open file descriptors.", {}, 12);
  FakeTailer{"nginx", 3}.collectMetrics(w);
  FakeTailer{"syslog", 1}.collectMetrics(w);
  CHECK(w.familyCount() == 3);
  CHECK(w.text() ==
        "# HELP logsplice_open_fds Open file descriptors.\n"
        "# TYPE logsplice_open_fds gauge\n"
        "logsplice_open_fds 12\n"
        "# HELP logsplice_input_files_followed Files followed now.\n"
        "# TYPE logsplice_input_files_followed gauge\n"
        "logsplice_input_files_followed{input=\"nginx\"} 3\n"
        "logsplice_input_files_followed{input=\"syslog\"} 1\n"
        "# HELP logsplice_input_rotations_total Rotations seen.\n"
        "# TYPE logsplice_input_rotations_total counter\n"
        "logsplice_input_rotations_total{input=\"nginx\"} 2\n"
        "logsplice_input_rotations_total{input=\"syslog\"} 2\n");

  // What a scraper reads back: every sample, each once.
  auto parsed = parsePromText(w.text());
  REQUIRE(parsed.ok());
  CHECK(parsed.value().size() == 5);
}

TEST_CASE("PromMetricWriter escapes labels and HELP as PromTextBuilder does",
          "[prom_metric_writer]") {
  PromMetricWriter w;
  w.counter("logsplice_sink_bytes_sent_total", "Bytes sent.\nPer \\sink\\.",
            {{"sink", "a \"quoted\"\\name\nx"}, {"state", "ok"}}, 1.5);

  PromTextBuilder b;
  b.family("logsplice_sink_bytes_sent_total", "Bytes sent.\nPer \\sink\\.", PromType::kCounter);
  b.sample("logsplice_sink_bytes_sent_total", {{"sink", "a \"quoted\"\\name\nx"}, {"state", "ok"}},
           1.5);
  CHECK(w.text() == b.text());
  CHECK(w.text() ==
        "# HELP logsplice_sink_bytes_sent_total Bytes sent.\\nPer \\\\sink\\\\.\n"
        "# TYPE logsplice_sink_bytes_sent_total counter\n"
        "logsplice_sink_bytes_sent_total"
        "{sink=\"a \\\"quoted\\\"\\\\name\\nx\",state=\"ok\"} 1.5\n");
  auto parsed = parsePromText(w.text());
  REQUIRE(parsed.ok());
  REQUIRE(parsed.value().size() == 1);
  CHECK(parsed.value()[0].label("sink") == "a \"quoted\"\\name\nx");
}

TEST_CASE("PromMetricWriter keeps the first HELP of a family and writes nothing when empty",
          "[prom_metric_writer]") {
  PromMetricWriter empty;
  CHECK(empty.text().empty());
  CHECK(empty.familyCount() == 0);

  PromMetricWriter w;
  w.gauge("a", "First help.", {{"k", "1"}}, 1);
  w.gauge("b", "B.", {}, 0);
  w.gauge("a", "Other help.", {{"k", "2"}}, 2);
  CHECK(w.text() ==
        "# HELP a First help.\n# TYPE a gauge\na{k=\"1\"} 1\na{k=\"2\"} 2\n"
        "# HELP b B.\n# TYPE b gauge\nb 0\n");
}
