// `type: kafka` outputs: every key read, the defaults, and each bad value reported at its
// file:line:col; `librdkafka:` properties checked by librdkafka itself (an unknown property at
// its name, a refused value at the value); the topic template and the properties the output is
// built with.

#include "config/kafka_keys.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/config/config_test_helpers.h"

using namespace logsplice;
using namespace logsplice::config;

namespace {

std::string withKafka(const std::string& lines) {
  return "inputs:\n"
         "  - name: app\n"
         "    paths: [/var/log/app.log]\n"
         "outputs:\n"
         "  - name: k\n"
         "    type: kafka\n"
         "    inputs: [app]\n" +
         lines;
}

const ConfigError& errorAt(const ParseResult& r, int line) {
  for (const ConfigError& e : r.errors) {
    if (e.mark.line == line) return e;
  }
  FAIL("no error at line " << line << "; errors:\n" << allErrors(r));
  return r.errors.front();
}

}  // namespace

TEST_CASE("kafka: every key is read", "[config][kafka]") {
  Config c =
      parseOk(withKafka("    brokers: [\"k1:9092\", \"k2:9092\"]\n"
                        "    topic: logs-${input}\n"
                        "    key: host_file\n"
                        "    compression: zstd\n"
                        "    acks: all\n"
                        "    idempotence: true\n"
                        "    max_in_flight_bytes: 8MiB\n"
                        "    format: json\n"
                        "    headers: false\n"
                        "    librdkafka:\n"
                        "      linger.ms: 20\n"
                        "      batch.num.messages: 5000\n"));
  const auto& k = std::get<KafkaOutput>(c.outputs[0].kind);
  CHECK(k.brokers == std::vector<std::string>{"k1:9092", "k2:9092"});
  CHECK(k.topic == "logs-${input}");
  CHECK(k.key == KafkaKey::kHostFile);
  CHECK(k.compression == "zstd");
  CHECK(k.acks == "all");
  CHECK(k.idempotence);
  CHECK(k.max_in_flight_bytes == 8u << 20);
  CHECK(k.format == EventFormat::kJson);
  CHECK_FALSE(k.headers);
  REQUIRE(k.librdkafka.size() == 2);
  CHECK(k.librdkafka[0] == std::pair<std::string, std::string>{"linger.ms", "20"});
  CHECK(k.librdkafka_marks[1].line == 19);
}

TEST_CASE("kafka: defaults", "[config][kafka]") {
  Config c = parseOk(withKafka("    brokers: [\"k1:9092\"]\n    topic: logs\n"));
  const auto& k = std::get<KafkaOutput>(c.outputs[0].kind);
  CHECK(k.key == KafkaKey::kNone);
  CHECK(k.compression == "none");
  CHECK(k.acks == "all");
  CHECK(k.idempotence);
  CHECK(k.max_in_flight_bytes == 64u << 20);
  CHECK(k.format == EventFormat::kRaw);
  CHECK(k.headers);
  CHECK(k.librdkafka.empty());
}

TEST_CASE("kafka: brokers and topic are required", "[config][kafka]") {
  ParseResult r = parse(withKafka(""));
  CHECK_FALSE(r.ok());
  CHECK_THAT(allErrors(r), Catch::Contains("missing required key 'brokers' in output 'k'"));
  CHECK_THAT(allErrors(r), Catch::Contains("missing required key 'topic' in output 'k'"));
}

TEST_CASE("kafka: bad values are reported at their line and column", "[config][kafka]") {
  ParseResult r =
      parse(withKafka("    brokers: [\"nohost\"]\n"      // 8
                      "    topic: logs-${app}\n"         // 9
                      "    key: pid\n"                   // 10
                      "    compression: brotli\n"        // 11
                      "    format: syslog\n"             // 12
                      "    max_in_flight_bytes: 1KiB\n"  // 13
                      "    acks: 1\n"));                 // 14
  CHECK_FALSE(r.ok());
  CHECK(errorAt(r, 8).mark.column == 15);
  CHECK_THAT(errorAt(r, 9).message, Catch::Contains("unknown placeholder '${app}'"));
  CHECK_THAT(errorAt(r, 10).message, Catch::Contains("'key': invalid value 'pid'"));
  const ConfigError& comp = errorAt(r, 11);
  CHECK(comp.mark.column == 18);
  CHECK_THAT(comp.message,
             Catch::StartsWith("'compression': invalid value 'brotli' (expected none, lz4"));
  CHECK_THAT(errorAt(r, 12).message, Catch::Contains("'format': invalid value 'syslog'"));
  CHECK_THAT(errorAt(r, 13).message, Catch::Contains("max_in_flight_bytes"));
  CHECK_THAT(errorAt(r, 14).message, Catch::Contains("needs 'idempotence: false'"));
}

TEST_CASE("kafka: acks other than all with idempotence off is fine", "[config][kafka]") {
  Config c =
      parseOk(withKafka("    brokers: [\"k1:9092\"]\n    topic: logs\n"
                        "    acks: 1\n    idempotence: false\n"));
  CHECK(std::get<KafkaOutput>(c.outputs[0].kind).acks == "1");
}

TEST_CASE("kafka: librdkafka judges the pass-through properties", "[config][kafka]") {
  ParseResult r =
      parse(withKafka("    brokers: [\"k1:9092\"]\n"
                      "    topic: logs\n"
                      "    librdkafka:\n"
                      "      linger.mss: 5\n"                // 11: unknown
                      "      batch.num.messages: lots\n"     // 12: bad value
                      "      compression.codec: lz4\n"       // 13: ours
                      "      socket.timeout.ms: 30000\n"));  // fine
  CHECK_FALSE(r.ok());
  REQUIRE(r.errors.size() == 3);
  const ConfigError& unknown = errorAt(r, 11);
  CHECK(unknown.mark.column == 7);
  CHECK_THAT(unknown.message, Catch::StartsWith("librdkafka: "));
  CHECK_THAT(unknown.message, Catch::Contains("linger.mss"));
  const ConfigError& bad = errorAt(r, 12);
  CHECK(bad.mark.column == 27);
  CHECK_THAT(bad.message, Catch::Contains("batch.num.messages"));
  CHECK_THAT(errorAt(r, 13).message, Catch::Contains("set by the output itself"));
}

TEST_CASE("kafka: topic template and properties", "[config][kafka]") {
  CHECK(kafkaTopicFor("logs-${input}.${host}", "app", "web1") == "logs-app.web1");
  CHECK(kafkaTopicFor("fixed", "app", "web1") == "fixed");
  KafkaOutput k;
  k.brokers = {"a:1", "b:2"};
  k.max_in_flight_bytes = 8 << 20;
  k.librdkafka = {{"linger.ms", "50"}};
  auto p = kafkaProperties(k, "web1");
  auto value = [&](const std::string& name) {
    std::string v;  // the last setting wins, as in librdkafka
    for (const auto& [n, x] : p) {
      if (n == name) v = x;
    }
    return v;
  };
  CHECK(value("bootstrap.servers") == "a:1,b:2");
  CHECK(value("acks") == "all");
  CHECK(value("enable.idempotence") == "true");
  CHECK(value("queue.buffering.max.kbytes") == "4096");
  CHECK(value("linger.ms") == "50");
  CHECK(value("client.id") == "logsplice@web1");
}
