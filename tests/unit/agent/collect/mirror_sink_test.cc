// MirrorSink (the agent's `type: logsplice` output) against a real CollectServer on the same
// loop, over loopback. The test plays the router: it writes bytes into the sink's pipe and
// calls appended() with the segment they are.

#include "outputs/mirror_sink.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "agent/collect/collect_server.h"
#include "tests/support/recording_listener.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using logsplice::agent::collect::CollectServer;
using logsplice::outputs::MirrorSink;
using logsplice::outputs::Segment;
using logsplice::outputs::SourceInfo;
using logsplice::testing::readFile;
using logsplice::testing::RecordingListener;
using logsplice::testing::TempDir;

namespace {

constexpr const char* kToken = "sink-test-token";

struct Fixture {
  TempDir tmp;
  testing::Loop loop;
  RecordingListener listener;
  std::unique_ptr<CollectServer> server;
  std::unique_ptr<MirrorSink> sink;
  std::shared_ptr<const SourceInfo> source = std::make_shared<const SourceInfo>(
      SourceInfo{"app", "/var/log/app.log", "app.log", 1, 42, 0, 0});

  explicit Fixture(config::Millis fsync = config::Millis(20), uint64_t max_streams = 1024) {
    config::CollectConfig cfg;
    cfg.listen = {"127.0.0.1", 0};
    cfg.dir = tmp / "mirror";
    cfg.tokens["web-1"] = kToken;
    cfg.fsync_interval = fsync;
    cfg.max_streams = max_streams;
    server = std::make_unique<CollectServer>(loop.get(), cfg);
    REQUIRE_FALSE(server->start());
  }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    server->stop();
    server.reset();
    loop.runUntilIdle();
  }
  void startSink() {
    if (sink) {
      sink->close(nullptr);
      loop.runFor(20);
    }
    config::LogspliceOutput cfg;
    cfg.token = kToken;
    cfg.tcp.addresses.push_back({"127.0.0.1", server->port()});
    cfg.tcp.backoff.initial = config::Millis(20);
    cfg.tcp.backoff.max = config::Millis(100);
    sink = std::make_unique<MirrorSink>(loop.get(), "mirror", cfg, "web-1", listener, 1 << 20);
    REQUIRE_FALSE(sink->start());
    REQUIRE(loop.waitFor([&] { return sink->sessionUp(); }));
  }
  // Puts `bytes` (plus `extra` bytes the router adds, such as a '\n' after a split line) in
  // the pipe as one segment of file 1.
  void feed(const std::string& bytes, uint64_t offset, uint32_t newline = 0, uint64_t file_id = 1) {
    std::string all = bytes + std::string(newline, '\n');
    REQUIRE(::write(sink->pipe().writeFd(), all.data(), all.size()) ==
            static_cast<ssize_t>(all.size()));
    Segment seg;
    seg.file_id = file_id;
    seg.offset = offset;
    seg.length = bytes.size();
    seg.newline = newline;
    seg.source = file_id == 1 ? source
                              : std::make_shared<const SourceInfo>(SourceInfo{
                                    "app", "/var/log/f" + std::to_string(file_id) + ".log", "f", 1,
                                    100 + file_id, 0, 0});
    sink->appended(seg);
  }
  std::string mirror() { return readFile(tmp / "mirror/web-1/app/var/log/app.log"); }
};

}  // namespace

TEST_CASE("MirrorSink: the mirror gets the file's bytes; delivery waits for the durable ack",
          "[collect]") {
  Fixture f(config::Millis(400));
  f.startSink();
  f.feed("one\ntwo\n", 0);
  REQUIRE(f.loop.waitFor([&] { return f.mirror() == "one\ntwo\n"; }));
  // Written by the collector, but not synced yet: not delivered.
  CHECK(f.listener.deliveredOf(1) == 0);
  REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == 8; }));
  CHECK(f.sink->stats().bytes_sent == 8);
  // Headers and control messages are the only copies: HELLO, OPEN and one DATA header.
  CHECK(f.sink->stats().bytes_copied > 0);
  CHECK(f.sink->stats().bytes_copied < 200);
}

TEST_CASE("MirrorSink: a newline the router added is not the file's and is not mirrored",
          "[collect]") {
  Fixture f;
  f.startSink();
  f.feed("a very long line cut here", 0, /*newline=*/1);
  f.feed(" and its end\n", 25);
  REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == 38; }));
  CHECK(f.mirror() == "a very long line cut here and its end\n");
}

TEST_CASE("MirrorSink: what the collector holds is never sent again", "[collect]") {
  Fixture f;
  f.startSink();
  f.feed("line1\n", 0);
  REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == 6; }));
  // The agent restarts from an older checkpoint (offset 0): a new sink, a new session.
  f.listener.delivered.clear();
  f.startSink();
  f.feed("line1\nline2\n", 0);
  REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == 12; }));
  CHECK(f.mirror() == "line1\nline2\n");
  CHECK(f.sink->stats().bytes_sent == 6);  // only line2 left the agent
  // And the router was told, so that it need not read line1 again.
  REQUIRE_FALSE(f.listener.holds.empty());
  CHECK(f.listener.holds.back() == std::make_pair(uint64_t{1}, uint64_t{6}));
  CHECK(f.server->hostStats("web-1").replayed == 0);
}

TEST_CASE("MirrorSink: starting past what the collector holds rewinds to it", "[collect]") {
  Fixture f;
  f.startSink();
  f.feed("late\n", 100);  // e.g. start_at: end; the mirror holds nothing yet
  REQUIRE(f.loop.waitFor([&] { return !f.listener.rewinds.empty(); }));
  REQUIRE(f.listener.rewinds.back().size() == 1);
  CHECK(f.listener.rewinds.back()[0].file_id == 1);
  CHECK(f.listener.rewinds.back()[0].offset == 0);
  CHECK(f.mirror().empty());
}

TEST_CASE("MirrorSink: segments that continue a file leave as one frame", "[collect]") {
  uint64_t copied_one = 0;
  {
    Fixture f;
    f.startSink();
    f.feed("aaaa\nbbbb\ncccc\n", 0);
    REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == 15; }));
    copied_one = f.sink->stats().bytes_copied;
  }
  Fixture f;
  f.startSink();
  f.sink->holdDrain(0);  // as the router does during a scheduling pass
  f.feed("aaaa\n", 0);
  f.feed("bbbb\n", 5);
  f.feed("cccc\n", 10);
  f.sink->releaseDrain();
  REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == 15; }));
  CHECK(f.mirror() == "aaaa\nbbbb\ncccc\n");
  CHECK(f.sink->stats().bytes_copied == copied_one);  // one DATA header, not three
}

TEST_CASE("MirrorSink: more files than the collector's stream limit still all arrive",
          "[collect]") {
  Fixture f(config::Millis(20), /*max_streams=*/2);
  f.startSink();
  for (int round = 0; round < 3; ++round) {
    f.sink->holdDrain(0);
    for (uint64_t id = 1; id <= 4; ++id) {
      f.feed("round " + std::to_string(round) + "\n", static_cast<uint64_t>(round) * 8, 0, id);
    }
    f.sink->releaseDrain();
  }
  REQUIRE(f.loop.waitFor([&] {
    for (uint64_t id = 1; id <= 4; ++id) {
      if (f.listener.deliveredOf(id) != 24) return false;
    }
    return true;
  }));
  CHECK(f.sink->sessionUp());
  CHECK(f.sink->stats().connects == 1);  // never refused over the limit
  CHECK(readFile(f.tmp / "mirror/web-1/app/var/log/f3.log") == "round 0\nround 1\nround 2\n");
}
