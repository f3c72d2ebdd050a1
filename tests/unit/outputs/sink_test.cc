// The Sink base (outputs/sink.cc) through FakeSink, which drains its pipe into a string and
// acknowledges when told: segment bookkeeping, delivery mapped back to file offsets across
// segments and added newlines, rewind points, holding the drain during a scheduling pass,
// emptying the pipe, and the per-sink metrics.

#include "outputs/sink.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "tests/support/fake_sink.h"
#include "tests/support/recording_listener.h"
#include "tests/support/recording_metric_writer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::FakeSink;
using logsplice::testing::RecordingListener;
using logsplice::testing::RecordingMetricWriter;

namespace {

struct Fixture {
  RecordingListener listener;
  FakeSink sink{"fake", listener};
  Fixture() { REQUIRE(sink.start().isOk()); }

  // Writes the segment's stream bytes into the pipe (an owed '\n', the file bytes, an added
  // '\n') and registers it, as the router does after a fill.
  void feed(uint64_t file_id, uint64_t offset, const std::string& bytes, uint32_t newline = 0,
            bool newline_first = false) {
    std::string stream = (newline_first ? "\n" : "") + bytes + (newline ? "\n" : "");
    REQUIRE(::write(sink.pipe().writeFd(), stream.data(), stream.size()) ==
            static_cast<ssize_t>(stream.size()));
    Segment seg;
    seg.file_id = file_id;
    seg.generation = 7;
    seg.offset = offset;
    seg.length = bytes.size();
    seg.newline = newline;
    seg.newline_first = newline_first;
    sink.appended(seg);
  }
};

}  // namespace

TEST_CASE("Sink keeps segments of several files until delivered, in stream order") {
  Fixture fx;
  fx.sink.auto_ack = false;
  fx.feed(1, 0, "aaaa\n");
  fx.feed(2, 0, "bb\n");
  fx.feed(1, 5, "cc\n");
  CHECK(fx.sink.received == "aaaa\nbb\ncc\n");
  CHECK(fx.sink.inPipe() == 0);
  CHECK(fx.sink.pendingBytes() == 11);
  CHECK(fx.sink.holdsFile(1));
  CHECK(fx.sink.holdsFile(2));
  CHECK_FALSE(fx.sink.holdsFile(3));

  fx.sink.ackUpTo(5);  // the first segment exactly
  CHECK(fx.listener.deliveredOf(1) == 5);
  CHECK(fx.listener.deliveredOf(2) == 0);
  CHECK(fx.sink.pendingBytes() == 6);
  fx.sink.ackUpTo(7);  // two bytes into file 2's segment
  CHECK(fx.listener.deliveredOf(2) == 2);
  fx.sink.ackUpTo(11);
  CHECK(fx.listener.deliveredOf(2) == 3);
  CHECK(fx.listener.deliveredOf(1) == 8);
  CHECK(fx.sink.pendingBytes() == 0);
  CHECK_FALSE(fx.sink.holdsFile(1));
  CHECK_FALSE(fx.sink.holdsFile(2));
  for (const auto& d : fx.listener.deliveries) CHECK(d.generation == 7);
  fx.sink.ackUpTo(3);  // never backwards
  CHECK(fx.listener.deliveredOf(1) == 8);
}

TEST_CASE("Sink maps delivery across an added newline to file offsets") {
  Fixture fx;
  fx.sink.auto_ack = false;
  // A long line split at offset 10: ten file bytes, then the '\n' the router added.
  fx.feed(1, 0, "0123456789", /*newline=*/1);
  // Its continuation, with the '\n' of a later break owed at the front.
  fx.feed(1, 10, "abcde\n", 0, /*newline_first=*/true);
  CHECK(fx.sink.pendingBytes() == 11 + 7);

  fx.sink.ackUpTo(10);  // every file byte of the piece, not its '\n'
  CHECK(fx.listener.deliveredOf(1) == 9);
  fx.sink.ackUpTo(11);  // with the '\n': the piece is delivered
  CHECK(fx.listener.deliveredOf(1) == 10);
  fx.sink.ackUpTo(12);  // only the owed '\n' of the next segment
  CHECK(fx.listener.deliveredOf(1) == 10);
  fx.sink.ackUpTo(15);  // the '\n' and three file bytes
  CHECK(fx.listener.deliveredOf(1) == 13);
  fx.sink.ackUpTo(18);
  CHECK(fx.listener.deliveredOf(1) == 16);
}

TEST_CASE("Sink rewinds each file to its earliest unacknowledged offset") {
  Fixture fx;
  fx.sink.auto_ack = false;
  fx.feed(1, 0, "aaaa\n");
  fx.feed(2, 100, "bbbb\n");
  fx.feed(1, 5, "0123456789", /*newline=*/1);
  fx.feed(3, 0, "x\n", 0, /*newline_first=*/true);
  uint64_t epoch = fx.sink.epoch();
  SECTION("partly acknowledged") {
    fx.sink.ackUpTo(7);  // file 1's first segment and two bytes of file 2's
    fx.sink.breakConnection();
    REQUIRE(fx.listener.rewinds.size() == 1);
    const auto& r = fx.listener.rewinds[0];
    REQUIRE(r.size() == 3);
    CHECK(r[0].file_id == 1);
    CHECK(r[0].offset == 5);
    CHECK(r[0].generation == 7);
    CHECK_FALSE(r[0].newline_owed);
    CHECK(r[1].file_id == 2);
    CHECK(r[1].offset == 102);
    CHECK(r[2].file_id == 3);
    CHECK(r[2].offset == 0);
    CHECK(r[2].newline_owed);  // its owed '\n' never left
    CHECK(fx.sink.stats().resent_bytes == 5 + 5 + 11 + 3 - 7);
  }
  SECTION("a split piece acknowledged without its newline is resent whole") {
    fx.sink.ackUpTo(5 + 5 + 10);
    fx.sink.breakConnection();
    REQUIRE(fx.listener.rewinds.size() == 1);
    const auto& r = fx.listener.rewinds[0];
    REQUIRE(r.size() == 2);
    CHECK(r[0].file_id == 1);
    CHECK(r[0].offset == 14);  // the piece's last byte waits for its '\n'
  }
  CHECK(fx.sink.epoch() == epoch + 1);
  CHECK(fx.sink.pendingBytes() == 0);
  CHECK(fx.sink.inPipe() == 0);
  CHECK_FALSE(fx.sink.holdsFile(1));
}

TEST_CASE("Sink: nothing unacknowledged means no rewind") {
  Fixture fx;
  fx.feed(1, 0, "aaaa\n");  // auto-acknowledged
  fx.sink.breakConnection();
  CHECK(fx.listener.rewinds.empty());
  CHECK(fx.sink.stats().resent_bytes == 0);
}

TEST_CASE("Sink: a held drain waits for release, unless the pipe runs out of room") {
  Fixture fx;
  fx.sink.holdDrain(1);
  int drains = fx.sink.drains;
  fx.feed(1, 0, "aaaa\n");
  fx.feed(1, 5, "bbbb\n");
  CHECK(fx.sink.drains == drains);
  CHECK(fx.sink.inPipe() == 10);
  CHECK(fx.sink.received.empty());
  fx.sink.releaseDrain();
  CHECK(fx.sink.drains == drains + 1);  // both fills leave in one drain
  CHECK(fx.sink.received == "aaaa\nbbbb\n");
  CHECK(fx.sink.inPipe() == 0);
  fx.sink.releaseDrain();  // not held: nothing more
  CHECK(fx.sink.drains == drains + 1);

  // Held with a room floor above what the pipe has left: drains at once.
  fx.sink.holdDrain(fx.sink.pipe().capacity());
  fx.feed(1, 10, "cccc\n");
  CHECK(fx.sink.drains == drains + 2);
  CHECK(fx.sink.inPipe() == 0);
  fx.sink.releaseDrain();
}

TEST_CASE("Sink room and acceptsData follow the pipe and whether it can deliver") {
  Fixture fx;
  fx.sink.holdDrain(0);
  uint64_t cap = fx.sink.pipe().capacity();
  CHECK(fx.sink.room() == cap);
  fx.feed(1, 0, "aaaa\n");
  CHECK(fx.sink.room() == cap - 5);
  CHECK(fx.sink.acceptsData(cap - 5));
  CHECK_FALSE(fx.sink.acceptsData(cap - 4));
  fx.sink.setCanDeliver(false);
  CHECK(fx.sink.room() == 0);
  CHECK_FALSE(fx.sink.acceptsData(1));
  fx.sink.releaseDrain();
}

TEST_CASE("Sink::discardPipe empties the pipe") {
  Fixture fx;
  std::string junk(100000, 'x');
  size_t done = 0;
  while (done < junk.size()) {
    ssize_t n = ::write(fx.sink.pipe().writeFd(), junk.data() + done, junk.size() - done);
    REQUIRE(n > 0);
    done += static_cast<size_t>(n);
  }
  CHECK(fx.sink.pipe().queued() == junk.size());
  fx.sink.discardPipe();
  CHECK(fx.sink.pipe().queued() == 0);
  fx.sink.discardPipe();  // an empty pipe: returns at once
  CHECK(fx.sink.pipe().queued() == 0);
}

TEST_CASE("Sink::collectMetrics writes the per-sink families") {
  Fixture fx;
  fx.sink.mutableStats() = {10, 2, 1, 3, 4, 5, 6};
  RecordingMetricWriter w;
  fx.sink.collectMetrics(w);
  const sys::MetricLabels by_sink = {{"sink", "fake"}};
  struct Expect {
    const char* family;
    const char* help;
    double value;
  };
  const Expect counters[] = {
      {"logsplice_sink_bytes_sent_total", "Bytes written to the socket or archive.", 10},
      {"logsplice_sink_connects_total", "Connections made.", 2},
      {"logsplice_sink_disconnects_total", "Connections lost.", 1},
      {"logsplice_sink_resent_bytes_total", "Bytes sent again after a broken connection.", 3},
      {"logsplice_sink_pauses_total", "Times the sink paused (disk full, permissions).", 4},
      {"logsplice_sink_missed_bytes_total", "Bytes released by retention before delivery.", 5},
  };
  for (const Expect& e : counters) {
    CAPTURE(e.family);
    auto s = w.find(e.family, by_sink);
    REQUIRE(s);
    CHECK(s->help == e.help);
    CHECK(s->type == sys::MetricType::kCounter);
    CHECK(s->value == e.value);
  }
  auto up = w.find("logsplice_sink_up", by_sink);
  REQUIRE(up);
  CHECK(up->type == sys::MetricType::kGauge);
  CHECK(up->help == "1 when the sink can deliver.");
  CHECK(up->value == 1);
  auto state = w.find("logsplice_sink_state", {{"sink", "fake"}, {"state", "connected"}});
  REQUIRE(state);
  CHECK(state->type == sys::MetricType::kGauge);
  CHECK(state->help == "The sink's state (1 for the current one).");
  CHECK(state->value == 1);
  auto copied = w.find("logsplice_bytes_copied_total", {{"output", "fake"}});
  REQUIRE(copied);
  CHECK(copied->type == sys::MetricType::kCounter);
  CHECK(copied->help ==
        "Bytes the agent moved through its own memory on the way to this output (0 on the "
        "zero-copy path).");
  CHECK(copied->value == 6);
  CHECK(w.samples.size() == 9);

  fx.sink.setCanDeliver(false);  // paused
  RecordingMetricWriter w2;
  fx.sink.collectMetrics(w2);
  CHECK(w2.find("logsplice_sink_up", by_sink)->value == 0);
  CHECK(w2.find("logsplice_sink_state", {{"sink", "fake"}, {"state", "paused"}}));
}
