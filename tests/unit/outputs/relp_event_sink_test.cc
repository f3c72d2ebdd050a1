// The relp output against an in-process fake RELP server on 127.0.0.1 (RelpTestPeer): the
// session (open with offers, syslog frames numbered from 2, close at stop), delivery only on
// `rsp 200` and in order (an out-of-order answer is held), and every way a session breaks:
// an rsp for a number never sent, garbage, `rsp 500`, `serverclose`, a server that stops
// answering (timeout): each rewinds to the first unacknowledged line, nothing is lost. The
// window caps the unanswered frames. The inner framer is LengthFramer ("LEN SP LINE"), so a
// syslog frame's DATA is the line itself.

#include "outputs/relp_event_sink.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/event_feeder.h"
#include "tests/support/fake_clock.h"
#include "tests/support/length_framer.h"
#include "tests/support/recording_listener.h"
#include "tests/support/relp_test_peer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::RecordingListener;
using logsplice::testing::RelpFrame;
using logsplice::testing::RelpTestPeer;
using logsplice::testing::TestSocket;

namespace {

// `count` lines "l<n> xxxx" of `width` bytes (with '\n'), numbered from `first`.
std::string lines(int first, int count, size_t width = 40) {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    std::string line = "l" + std::to_string(i) + " ";
    line.resize(width - 1, 'x');
    out += line + '\n';
  }
  return out;
}

std::string lineN(int n, size_t width = 40) {
  std::string l = lines(n, 1, width);
  l.pop_back();
  return l;
}

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  RecordingListener listener;
  testing::FakeClock clock;
  config::RelpOutput cfg;
  std::unique_ptr<RelpEventSink> sink;
  testing::EventFeeder feeder;
  TestSocket server;

  Fixture() {
    cfg.tcp.backoff.initial = std::chrono::milliseconds(10);
    cfg.tcp.backoff.max = std::chrono::milliseconds(50);
    cfg.tcp.connect_timeout = std::chrono::milliseconds(2000);
    cfg.timeout = std::chrono::milliseconds(1000);
    server.listen();
  }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    loop.runUntilIdle();
    sink.reset();
  }
  void start(uint64_t window = 128) {
    auto hp = sys::parseHostPort(server.address());
    REQUIRE(hp.ok());
    cfg.tcp.addresses = {hp.value()};
    cfg.window = window;
    sink = std::make_unique<RelpEventSink>(loop.get(), "relp", cfg, listener, 256 * 1024,
                                           std::make_unique<testing::LengthFramer>(), clock);
    REQUIRE(sink->start().isOk());
  }
  // Accepts the next connection and runs it until its session is open (the peer answers
  // `open`).
  RelpTestPeer accept() {
    RelpTestPeer p;
    const uint64_t opened = sink->sessionsOpened();
    REQUIRE(loop.waitFor([&] {
      if (!p.peer.fd.valid()) p.peer.fd = server.accept();
      if (p.peer.fd.valid()) p.pump();
      return p.peer.fd.valid() && sink->sessionsOpened() > opened &&
             sink->session() == RelpEventSink::Session::kOpen;
    }));
    return p;
  }
  void feed(uint64_t offset, const std::string& bytes) {
    feeder.feed(*sink, 1, "in", offset, bytes);
  }
  // Runs until `p` has received `n` syslog frames.
  void waitFrames(RelpTestPeer& p, size_t n) {
    REQUIRE(loop.waitFor([&] {
      p.pump();
      return p.syslogFrames().size() >= n;
    }));
  }
};

}  // namespace

TEST_CASE("relp: open with offers, frames numbered from 2, delivered only on rsp 200") {
  Fixture fx;
  fx.start();
  RelpTestPeer p = fx.accept();
  REQUIRE(p.frames.size() >= 1);
  CHECK(p.frames[0].txnr == 1);
  CHECK(p.frames[0].command == "open");
  CHECK(p.frames[0].data.find("relp_version=0\n") == 0);
  CHECK(p.frames[0].data.find("commands=syslog") != std::string::npos);
  CHECK(fx.sink->state() == SinkState::kConnected);

  std::string text = lines(0, 5);
  fx.feed(0, text);
  fx.waitFrames(p, 5);
  std::vector<RelpFrame> got = p.syslogFrames();
  for (int i = 0; i < 5; ++i) {
    CHECK(got[i].txnr == static_cast<uint32_t>(2 + i));
    CHECK(got[i].data == lineN(i));
  }
  fx.loop.runFor(50);
  CHECK(fx.listener.deliveredOf(1) == 0);  // written and TCP-acknowledged, not answered
  CHECK(fx.sink->window().unanswered() == 5);

  // Answers out of order: 3 is held until 2 comes.
  p.rsp(3, "200 OK");
  fx.loop.runFor(50);
  CHECK(fx.listener.deliveredOf(1) == 0);
  p.rsp(2, "200 OK");
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == 80; }));
  p.rsp(4, "200 OK");
  p.rsp(5, "200 OK");
  p.rsp(6, "200 OK");
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == text.size(); }));
  CHECK(fx.sink->eventsInFlight() == 0);
  CHECK(fx.sink->stats().bytes_copied == text.size());
  CHECK(fx.sink->protocolErrors() == 0);

  // stop() ends the session with `close` (the next number), answered by the peer.
  fx.sink->stop();
  REQUIRE(fx.loop.waitFor([&] {
    p.pump();
    return !p.frames.empty() && p.frames.back().command == "close";
  }));
  CHECK(p.frames.back().txnr == 7);
  REQUIRE(fx.loop.waitFor([&] { return fx.sink->session() == RelpEventSink::Session::kNone; }));
  CHECK(fx.sink->state() == SinkState::kStopped);
}

TEST_CASE("relp: an rsp for a number never sent, or garbage, resets the session; nothing lost") {
  const bool garbage = GENERATE(false, true);
  CAPTURE(garbage);
  Fixture fx;
  fx.start();
  RelpTestPeer p = fx.accept();
  std::string text = lines(0, 6);
  fx.feed(0, text);
  fx.waitFrames(p, 6);
  p.rsp(2, "200 OK");
  p.rsp(3, "200 OK");
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == 80; }));
  if (garbage) {
    p.send("4 rsp 6 200 OK\nthis is not relp\n");
  } else {
    p.rsp(77, "200 OK");
  }
  RelpTestPeer p2 = fx.accept();
  CHECK(fx.sink->protocolErrors() == 1);
  // Frame 4 was answered before the garbage: its line is delivered too.
  const uint64_t resume = garbage ? 120 : 80;
  CHECK(fx.listener.deliveredOf(1) == resume);
  REQUIRE_FALSE(fx.listener.rewinds.empty());
  REQUIRE(fx.listener.rewinds.back().size() == 1);
  CHECK(fx.listener.rewinds.back()[0].offset == resume);
  // The router's resend: the new session numbers from 2 again.
  fx.feed(resume, text.substr(resume));
  p2.auto_ack = true;
  REQUIRE(fx.loop.waitFor([&] {
    p2.pump();
    return fx.listener.deliveredOf(1) == text.size();
  }));
  std::vector<RelpFrame> got = p2.syslogFrames();
  REQUIRE(got.size() == (text.size() - resume) / 40);
  CHECK(got[0].txnr == 2);
  CHECK(got[0].data == lineN(static_cast<int>(resume / 40)));
  CHECK(fx.sink->stats().connects == 2);
}

TEST_CASE("relp: rsp 500 is logged, counted, and resent on the next session") {
  Fixture fx;
  fx.start();
  RelpTestPeer p = fx.accept();
  std::string text = lines(0, 3);
  fx.feed(0, text);
  fx.waitFrames(p, 3);
  p.rsp(2, "200 OK");
  p.rsp(3, "500 queue full");
  RelpTestPeer p2 = fx.accept();
  CHECK(fx.sink->rspErrors() == 1);
  CHECK(fx.listener.deliveredOf(1) == 40);
  REQUIRE_FALSE(fx.listener.rewinds.empty());
  CHECK(fx.listener.rewinds.back()[0].offset == 40);
  fx.feed(40, text.substr(40));
  p2.auto_ack = true;
  REQUIRE(fx.loop.waitFor([&] {
    p2.pump();
    return fx.listener.deliveredOf(1) == text.size();
  }));
  CHECK(p2.syslogFrames()[0].data == lineN(1));
}

TEST_CASE("relp: a peer that stops answering times out; the session is resent") {
  Fixture fx;
  fx.start();
  RelpTestPeer p = fx.accept();
  std::string text = lines(0, 4);
  fx.feed(0, text);
  fx.waitFrames(p, 4);
  p.rsp(2, "200 OK");
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == 40; }));
  fx.loop.runFor(250);  // several ack ticks, not yet the timeout
  CHECK(fx.sink->timeouts() == 0);
  CHECK(fx.sink->session() == RelpEventSink::Session::kOpen);
  fx.clock.advanceMs(1001);
  RelpTestPeer p2 = fx.accept();
  CHECK(fx.sink->timeouts() == 1);
  CHECK(fx.listener.rewinds.back()[0].offset == 40);
  fx.feed(40, text.substr(40));
  p2.auto_ack = true;
  REQUIRE(fx.loop.waitFor([&] {
    p2.pump();
    return fx.listener.deliveredOf(1) == text.size();
  }));
}

TEST_CASE("relp: serverclose ends the session; it reopens and resends") {
  Fixture fx;
  fx.start();
  RelpTestPeer p = fx.accept();
  std::string text = lines(0, 2);
  fx.feed(0, text);
  fx.waitFrames(p, 2);
  p.send("0 serverclose 0\n");
  RelpTestPeer p2 = fx.accept();
  CHECK(fx.sink->protocolErrors() == 0);
  CHECK(fx.listener.rewinds.back()[0].offset == 0);
  fx.feed(0, text);
  p2.auto_ack = true;
  REQUIRE(fx.loop.waitFor([&] {
    p2.pump();
    return fx.listener.deliveredOf(1) == text.size();
  }));
}

TEST_CASE("relp: the window caps the unanswered frames") {
  Fixture fx;
  fx.start(/*window=*/4);
  RelpTestPeer p = fx.accept();
  std::string text = lines(0, 10);
  fx.feed(0, text);
  fx.waitFrames(p, 4);
  fx.loop.runFor(100);
  p.pump();
  CHECK(p.syslogFrames().size() == 4);
  CHECK(fx.sink->window().unanswered() == 4);
  p.rsp(2, "200 OK");
  p.rsp(3, "200 OK");
  fx.waitFrames(p, 6);
  fx.loop.runFor(50);
  p.pump();
  CHECK(p.syslogFrames().size() == 6);
  p.auto_ack = true;
  p.answered = 0;  // answer what is still open too
  for (const RelpFrame& f : p.syslogFrames()) {
    if (f.txnr >= 4) p.rsp(f.txnr, "200 OK");
  }
  p.answered = p.frames.size();
  REQUIRE(fx.loop.waitFor([&] {
    p.pump();
    return fx.listener.deliveredOf(1) == text.size();
  }));
  std::vector<RelpFrame> got = p.syslogFrames();
  REQUIRE(got.size() == 10);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].data == lineN(static_cast<int>(i)));
}

TEST_CASE("relp: a server that does not offer commands=syslog gets no events") {
  Fixture fx;
  fx.start();
  RelpTestPeer p;
  p.open_offers = "relp_version=0\ncommands=eventlog";
  fx.feed(0, lines(0, 2));
  REQUIRE(fx.loop.waitFor([&] {
    if (!p.peer.fd.valid()) p.peer.fd = fx.server.accept();
    if (p.peer.fd.valid()) p.pump();
    return p.peer.eof;
  }));
  CHECK(p.syslogFrames().empty());
  CHECK(fx.sink->session() != RelpEventSink::Session::kOpen);
  CHECK(fx.sink->stats().bytes_copied == 0);  // nothing was read out of the pipe
}
