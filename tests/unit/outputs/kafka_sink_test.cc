// The kafka sink against librdkafka's mock cluster, in process (3 brokers on 127.0.0.1). The
// test plays the router (EventFeeder) and runs the loop. Checked: every line becomes one
// delivered message and each file is reported delivered to its end; delivery is reported over
// the contiguous prefix only (a slow partition holds back the files behind it in wire order);
// a permanent error is counted and passed over; a transient failure rewinds and resends; an
// event too large for message.max.bytes goes out in pieces.

#include "outputs/kafka_sink.h"

#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/kafka_keys.h"
#include "tests/support/event_feeder.h"
#include "tests/support/recording_listener.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::EventFeeder;
using logsplice::testing::RecordingListener;

namespace {

class MockCluster {
 public:
  MockCluster() {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    REQUIRE(rk_ != nullptr);
    mc_ = rd_kafka_mock_cluster_new(rk_, 3);
    REQUIRE(mc_ != nullptr);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(rk_);
  }
  rd_kafka_mock_cluster_t* get() { return mc_; }
  std::vector<std::string> brokers() const {
    std::vector<std::string> out;
    std::string all = rd_kafka_mock_cluster_bootstraps(mc_);
    size_t at = 0;
    while (at <= all.size()) {
      size_t comma = all.find(',', at);
      if (comma == std::string::npos) comma = all.size();
      out.push_back(all.substr(at, comma - at));
      at = comma + 1;
    }
    return out;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
};

struct Fixture {
  MockCluster cluster;
  uv_loop_t loop;
  RecordingListener listener;
  EventFeeder feeder;
  config::KafkaOutput cfg;
  std::unique_ptr<KafkaSink> sink;

  Fixture() {
    REQUIRE(uv_loop_init(&loop) == 0);
    cfg.brokers = cluster.brokers();
    cfg.topic = "t-${input}";
    cfg.key = config::KafkaKey::kFile;
    cfg.librdkafka = {{"linger.ms", "1"}, {"log_level", "0"}};
  }
  ~Fixture() {
    if (sink) {
      bool closed = false;
      sink->close([&] { closed = true; });
      while (!closed) uv_run(&loop, UV_RUN_NOWAIT);
      sink.reset();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  void start() {
    config::AgentConfig agent;
    agent.hostname = "testhost";
    sink = std::make_unique<KafkaSink>(
        &loop, "k", cfg, agent.hostname, listener, 256 * 1024,
        std::make_unique<KafkaFramer>(agent, cfg, std::vector<config::InputConfig>{}));
    REQUIRE_FALSE(sink->start());
  }
  // Runs the loop until `done` (false after `seconds`).
  bool runUntil(const std::function<bool()>& done, double seconds = 10) {
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      uv_run(&loop, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    return true;
  }
};

std::string lines(const std::string& tag, int count, size_t width = 60) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    std::string line = tag + "-" + std::to_string(i) + " ";
    line.resize(width - 1, 'x');
    out += line + '\n';
  }
  return out;
}

}  // namespace

TEST_CASE("kafka sink: every line delivered, each file to its end", "[kafka]") {
  Fixture f;
  rd_kafka_mock_topic_create(f.cluster.get(), "t-a", 3, 3);
  rd_kafka_mock_topic_create(f.cluster.get(), "t-b", 3, 3);
  f.start();
  const std::string a = lines("a", 500), b = lines("b", 300);
  f.feeder.feed(*f.sink, 1, "a", 0, a.substr(0, 6000));
  f.feeder.feed(*f.sink, 2, "b", 0, b);
  f.feeder.feed(*f.sink, 1, "a", 6000, a.substr(6000));
  REQUIRE(f.runUntil([&] {
    return f.listener.deliveredOf(1) == a.size() && f.listener.deliveredOf(2) == b.size();
  }));
  CHECK(f.sink->messagesDelivered() == 800);
  CHECK(f.sink->eventsInFlight() == 0);
  CHECK(f.sink->inFlightBytes() == 0);
  CHECK(f.listener.rewinds.empty());
  // Every pipe byte read out, and the values, keys and headers copied into librdkafka.
  CHECK(f.sink->stats().bytes_copied > 2 * (a.size() + b.size()));
}

TEST_CASE("kafka sink: delivery advances over the contiguous prefix only", "[kafka]") {
  Fixture f;
  rd_kafka_mock_topic_create(f.cluster.get(), "t-slow", 1, 1);
  rd_kafka_mock_topic_create(f.cluster.get(), "t-fast", 1, 1);
  rd_kafka_mock_partition_set_leader(f.cluster.get(), "t-slow", 0, 1);
  rd_kafka_mock_partition_set_leader(f.cluster.get(), "t-fast", 0, 2);
  f.start();
  // Metadata first, so the delay below applies to produce requests.
  f.feeder.feed(*f.sink, 1, "slow", 0, "warm\n");
  f.feeder.feed(*f.sink, 2, "fast", 0, "warm\n");
  REQUIRE(f.runUntil([&] { return f.listener.deliveredOf(2) == 5; }));
  rd_kafka_mock_broker_set_rtt(f.cluster.get(), 1, 1500);
  const std::string slow = lines("s", 10), fast = lines("f", 10);
  f.feeder.feed(*f.sink, 1, "slow", 5, slow);  // first in wire order, late reports
  f.feeder.feed(*f.sink, 2, "fast", 5, fast);
  // The fast partition's reports arrive, yet its file waits for the slow one's.
  REQUIRE(f.runUntil([&] { return f.sink->messagesDelivered() >= 12; }));
  CHECK(f.listener.deliveredOf(2) == 5);
  CHECK(f.listener.deliveredOf(1) == 5);
  REQUIRE(f.runUntil([&] {
    return f.listener.deliveredOf(1) == 5 + slow.size() &&
           f.listener.deliveredOf(2) == 5 + fast.size();
  }));
  CHECK(f.sink->messagesDelivered() == 22);
}

TEST_CASE("kafka sink: a permanent error is counted and passed over", "[kafka]") {
  Fixture f;
  rd_kafka_mock_topic_create(f.cluster.get(), "t-a", 1, 3);
  f.start();
  f.feeder.feed(*f.sink, 1, "a", 0, "warm\n");
  REQUIRE(f.runUntil([&] { return f.listener.deliveredOf(1) == 5; }));
  rd_kafka_mock_push_request_errors(f.cluster.get(), 0 /* Produce */, 1,
                                    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  const std::string a = lines("a", 5);
  f.feeder.feed(*f.sink, 1, "a", 5, a);
  REQUIRE(f.runUntil([&] { return f.listener.deliveredOf(1) == 5 + a.size(); }));
  CHECK(f.sink->messagesPermanentFailed() > 0);
  CHECK(f.sink->messagesPermanentFailed() + f.sink->messagesDelivered() == 6);
  CHECK(f.sink->rewinds() == 0);
  CHECK(f.listener.rewinds.empty());
}

TEST_CASE("kafka sink: a transient failure rewinds and resends", "[kafka]") {
  Fixture f;
  rd_kafka_mock_topic_create(f.cluster.get(), "t-a", 1, 3);
  // No retries of librdkafka's own: the first failure reaches the sink.
  f.cfg.idempotence = false;
  f.cfg.acks = "1";
  f.cfg.librdkafka.push_back({"message.send.max.retries", "0"});
  f.start();
  f.feeder.feed(*f.sink, 1, "a", 0, "warm\n");
  REQUIRE(f.runUntil([&] { return f.listener.deliveredOf(1) == 5; }));
  rd_kafka_mock_push_request_errors(f.cluster.get(), 0, 1, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  // The router's side of a rewind: the resend starts where the sink said.
  const std::string a = lines("a", 5);
  f.listener.on_rewind = [&](const std::vector<SinkListener::Rewind>& r) {
    REQUIRE(r.size() == 1);
    CHECK(r[0].offset == 5);
  };
  f.feeder.feed(*f.sink, 1, "a", 5, a);
  REQUIRE(f.runUntil([&] { return f.sink->rewinds() == 1; }));
  CHECK(f.sink->messagesFailed() >= 1);
  CHECK(f.listener.deliveredOf(1) == 5);
  f.feeder.feed(*f.sink, 1, "a", 5, a);
  REQUIRE(f.runUntil([&] { return f.listener.deliveredOf(1) == 5 + a.size(); }));
  CHECK(f.listener.rewinds.size() == 1);
}

TEST_CASE("kafka sink: an event larger than message.max.bytes goes out in pieces", "[kafka]") {
  Fixture f;
  rd_kafka_mock_topic_create(f.cluster.get(), "t-a", 1, 3);
  f.cfg.format = config::EventFormat::kJson;
  f.cfg.librdkafka.push_back({"message.max.bytes", "2000"});
  f.start();
  std::string big(5000, 'y');
  big += '\n';
  f.feeder.feed(*f.sink, 1, "a", 0, big);
  REQUIRE(f.runUntil([&] { return f.listener.deliveredOf(1) == big.size(); }));
  CHECK(f.sink->messagesDelivered() >= 4);
  CHECK(f.sink->maxValueBytes() <= 2000);
  CHECK(f.listener.rewinds.empty());
}
