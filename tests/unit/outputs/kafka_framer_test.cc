// The kafka framer's frames cut back into messages: topic per input (${input}, ${host}), the
// four key choices, file path and offset carried for the headers, the value as it is (raw) or
// the JSON object without its newline; several frames back to back read one by one.

#include "outputs/kafka_framer.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

using namespace logsplice;
using namespace logsplice::outputs;

namespace {

std::vector<KafkaFrame> cut(const std::string& bytes) {
  std::vector<KafkaFrame> out;
  size_t at = 0;
  while (at < bytes.size()) {
    KafkaFrame f;
    REQUIRE(readKafkaFrame(bytes.data() + at, bytes.size() - at, f));
    out.push_back(f);
    at += f.size;
  }
  return out;
}

LineView lineOf(const std::string& text, const SourceInfo& src, uint64_t offset) {
  LineView v;
  v.bytes = text;
  v.offset = offset;
  v.source = &src;
  return v;
}

}  // namespace

TEST_CASE("kafka framer: frames cut back into topic, key, headers and value", "[kafka]") {
  config::AgentConfig agent;
  agent.hostname = "web1";
  config::KafkaOutput k;
  k.topic = "logs-${input}";
  SourceInfo app{"app", "/var/log/app.log", "app.log"};
  SourceInfo db{"db", "/var/log/db.log", "db.log"};
  const std::pair<config::KafkaKey, std::string> keys[] = {
      {config::KafkaKey::kNone, ""},
      {config::KafkaKey::kHost, "web1"},
      {config::KafkaKey::kFile, "/var/log/app.log"},
      {config::KafkaKey::kHostFile, "web1:/var/log/app.log"}};
  for (const auto& [key, expected] : keys) {
    k.key = key;
    KafkaFramer framer(agent, k, {});
    std::string out;
    framer.frame(lineOf("first line", app, 0), out);
    framer.frame(lineOf("", app, 11), out);
    framer.frame(lineOf("db line", db, 7), out);
    auto frames = cut(out);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].topic == "logs-app");
    CHECK(frames[0].key == expected);
    CHECK(frames[0].input == "app");
    CHECK(frames[0].path == "/var/log/app.log");
    CHECK(frames[0].value == "first line");
    CHECK(frames[0].offset == 0);
    CHECK(frames[1].value.empty());
    CHECK(frames[1].offset == 11);
    CHECK(frames[2].topic == "logs-db");
    CHECK(frames[2].value == "db line");
    CHECK(frames[2].offset == 7);
  }
}

TEST_CASE("kafka framer: a frame must be whole", "[kafka]") {
  config::AgentConfig agent;
  config::KafkaOutput k;
  k.topic = "t";
  SourceInfo app{"app", "/a.log", "a.log"};
  KafkaFramer framer(agent, k, {});
  std::string out;
  framer.frame(lineOf("hello", app, 0), out);
  KafkaFrame f;
  CHECK_FALSE(readKafkaFrame(out.data(), out.size() - 1, f));
  CHECK_FALSE(readKafkaFrame(out.data(), 3, f));
  CHECK(readKafkaFrame(out.data(), out.size(), f));
}

TEST_CASE("kafka framer: format json is the event object without its newline", "[kafka]") {
  config::AgentConfig agent;
  agent.hostname = "web1";
  config::KafkaOutput k;
  k.topic = "t-${host}";
  k.format = config::EventFormat::kJson;
  SourceInfo app{"app", "/var/log/app.log", "app.log"};
  KafkaFramer framer(agent, k, {});
  std::string out;
  framer.frame(lineOf("say \"hi\"", app, 42), out);
  auto frames = cut(out);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].topic == "t-web1");
  std::string value(frames[0].value);
  CHECK(value.front() == '{');
  CHECK(value.back() == '}');
  CHECK_THAT(value, Catch::Contains("\"message\":\"say \\\"hi\\\"\""));
  CHECK_THAT(value, Catch::Contains("\"offset\":42"));
  CHECK_THAT(value, Catch::Contains("\"host\":\"web1\""));
}
