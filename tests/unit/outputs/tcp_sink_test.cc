// TcpSink against plain listening sockets on 127.0.0.1:0: connect, delivery acknowledged through
// SIOCOUTQ, failover, reconnect with resend of what was not acknowledged, bad addresses. The
// test plays the router: it writes bytes into the sink's pipe and calls appended().

#include "outputs/tcp_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/recording_listener.h"
#include "tests/support/tcp_test_peer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::numberedLines;
using logsplice::testing::Peer;
using logsplice::testing::RecordingListener;
using logsplice::testing::TestSocket;

namespace {

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  RecordingListener listener;
  config::TcpOutput cfg;
  std::unique_ptr<TcpSink> sink;

  Fixture() {
    cfg.backoff.initial = std::chrono::milliseconds(20);
    cfg.backoff.max = std::chrono::milliseconds(200);
    cfg.connect_timeout = std::chrono::milliseconds(2000);
  }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    loop.runUntilIdle();
  }
  void start(const std::vector<std::string>& addresses, size_t pipe_bytes = 512 * 1024) {
    cfg.addresses.clear();
    for (const std::string& a : addresses) {
      auto hp = sys::parseHostPort(a);
      REQUIRE(hp.ok());
      cfg.addresses.push_back(hp.value());
    }
    sink = std::make_unique<TcpSink>(loop.get(), "tcp", cfg, listener, pipe_bytes);
    REQUIRE(sink->start().isOk());
  }
  void feed(const std::string& bytes, uint64_t offset, uint64_t file_id = 1) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(sink->pipe().writeFd(), bytes.data() + done, bytes.size() - done);
      REQUIRE(n > 0);
      done += static_cast<size_t>(n);
    }
    Segment seg;
    seg.file_id = file_id;
    seg.offset = offset;
    seg.length = bytes.size();
    sink->appended(seg);
  }
  // Runs the loop until the sink is connected and `server` accepted the connection.
  Peer acceptFrom(TestSocket& server) { return acceptConnected(loop, server, *sink); }
};

}  // namespace

TEST_CASE("TcpSink connects, sends, and reports delivery once the peer's TCP acknowledged it") {
  Fixture fx;
  TestSocket server;
  server.listen();
  fx.start({server.address()});
  CHECK_FALSE(fx.sink->acceptsData(1));  // not connected yet
  Peer peer = fx.acceptFrom(server);
  CHECK(fx.sink->stats().connects == 1);
  CHECK(fx.listener.ready >= 1);  // the router is told it may fill
  CHECK(fx.sink->acceptsData(64 * 1024));

  std::string a = numberedLines(0, 100), b = numberedLines(100, 50);
  fx.feed(a, 0);
  fx.feed(b, a.size());
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return peer.data.size() >= a.size() + b.size();
  }));
  CHECK(peer.data == a + b);
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == a.size() + b.size(); }));
  CHECK(fx.sink->pendingBytes() == 0);
  CHECK(fx.sink->stats().bytes_sent == a.size() + b.size());
  CHECK(fx.listener.rewinds.empty());
  // Deliveries are reported in order and never go backwards.
  uint64_t last = 0;
  for (const auto& d : fx.listener.deliveries) {
    CHECK(d.offset_end >= last);
    last = d.offset_end;
  }
}

TEST_CASE("TcpSink fails over to the next address when the first refuses") {
  Fixture fx;
  TestSocket refusing;  // bound, not listening
  TestSocket server;
  server.listen();
  fx.start({refusing.address(), server.address()});
  Peer peer = fx.acceptFrom(server);
  CHECK(fx.sink->currentAddress().toString() == server.address());
  CHECK(fx.sink->stats().connects == 1);
  std::string a = numberedLines(0, 10);
  fx.feed(a, 0);
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return peer.data.size() >= a.size();
  }));
  CHECK(peer.data == a);
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == a.size(); }));
}

TEST_CASE("TcpSink keeps retrying with backoff while nobody listens, then connects") {
  Fixture fx;
  TestSocket server;  // not listening yet: refused
  fx.start({server.address()});
  fx.feed(numberedLines(0, 5), 0);  // bytes wait in the pipe
  fx.loop.runFor(150);
  CHECK(fx.sink->stats().connects == 0);
  CHECK((fx.sink->state() == SinkState::kBackoff || fx.sink->state() == SinkState::kConnecting));
  CHECK_FALSE(fx.sink->acceptsData(1));
  server.listen();
  Peer peer = fx.acceptFrom(server);
  CHECK(fx.sink->stats().connects == 1);
  // A failed connect threw the pipe away and asked for a resend of the unacknowledged bytes.
  REQUIRE_FALSE(fx.listener.rewinds.empty());
  CHECK(fx.listener.rewinds.front().at(0).offset == 0);
  std::string a = numberedLines(0, 5);
  fx.feed(a, 0);
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return peer.data.size() >= a.size();
  }));
  CHECK(peer.data == a);
}

TEST_CASE("TcpSink does not report bytes the peer's TCP has not acknowledged, and resends them") {
  Fixture fx;
  TestSocket server(/*rcvbuf=*/4096);  // a small window: most bytes stay unacknowledged
  server.listen();
  std::vector<SinkListener::Rewind> rewound;
  fx.listener.on_rewind = [&](const std::vector<SinkListener::Rewind>& r) { rewound = r; };
  fx.start({server.address()});
  Peer first = fx.acceptFrom(server);
  std::string content = numberedLines(0, 3000);  // 300 KB
  fx.feed(content, 0);
  // The peer does not read: its window closes, the rest waits in our send queue and the pipe.
  fx.loop.runFor(300);
  uint64_t sent = fx.sink->stats().bytes_sent;
  uint64_t acked = fx.listener.deliveredOf(1);
  CHECK(sent > 0);
  CHECK(acked < sent);
  CHECK(acked < content.size());

  // The collector closes its side: the sink reconnects and is asked to resend from the first
  // unacknowledged byte.
  REQUIRE(::shutdown(first.fd.get(), SHUT_WR) == 0);
  Peer second = fx.acceptFrom(server);
  REQUIRE(rewound.size() == 1);
  uint64_t from = rewound[0].offset;
  CHECK(rewound[0].file_id == 1);
  CHECK(from >= acked);
  CHECK(from < content.size());
  CHECK(fx.sink->stats().disconnects == 1);
  CHECK(fx.sink->stats().connects == 2);
  CHECK(fx.sink->stats().resent_bytes == content.size() - from);
  fx.feed(content.substr(from), from);  // the router's resend
  REQUIRE(fx.loop.waitFor(
      [&] {
        first.read();
        second.read();
        return first.eof && second.data.size() >= content.size() - from;
      },
      10000));
  // No gap: the first connection got a prefix reaching at least `from`, the second the rest.
  CHECK(first.data == content.substr(0, first.data.size()));
  CHECK(first.data.size() >= from);
  CHECK(second.data == content.substr(from));
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == content.size(); }));
}

TEST_CASE("TcpSink reconnects after the peer closed, with nothing to resend once all was acked") {
  Fixture fx;
  TestSocket server;
  server.listen();
  fx.start({server.address()});
  Peer first = fx.acceptFrom(server);
  std::string a = numberedLines(0, 20);
  fx.feed(a, 0);
  REQUIRE(fx.loop.waitFor([&] {
    first.read();
    return first.data.size() == a.size() && fx.listener.deliveredOf(1) == a.size();
  }));
  first.fd.reset();  // the collector restarts
  Peer second = fx.acceptFrom(server);
  CHECK(fx.sink->stats().disconnects == 1);
  CHECK(fx.sink->stats().connects == 2);
  CHECK(fx.listener.rewinds.empty());
  CHECK(fx.sink->stats().resent_bytes == 0);
  std::string b = numberedLines(20, 20);
  fx.feed(b, a.size());
  REQUIRE(fx.loop.waitFor([&] {
    second.read();
    return second.data.size() >= b.size();
  }));
  CHECK(second.data == b);
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == a.size() + b.size(); }));
}

TEST_CASE("TcpSink with bad addresses backs off and never crashes") {
  Fixture fx;
  // Names that never resolve (RFC 6761 reserves .invalid) and a port nobody listens on.
  fx.start({"nonsense.invalid:1", "[::1]:1", "127.0.0.1:1"});
  fx.feed(numberedLines(0, 3), 0);
  fx.loop.runFor(300);
  CHECK(fx.sink->stats().connects == 0);
  CHECK(fx.sink->state() != SinkState::kConnected);
  CHECK_FALSE(fx.sink->acceptsData(1));
  fx.sink->stop();
  CHECK(fx.sink->state() == SinkState::kStopped);
  fx.loop.runFor(50);
  CHECK(fx.sink->state() == SinkState::kStopped);  // no timer brings it back
}

TEST_CASE("TcpSink stop() and close() while connecting leave the loop closable") {
  Fixture fx;
  TestSocket server;
  server.listen();
  fx.start({server.address()});
  CHECK(fx.sink->state() == SinkState::kConnecting);
  fx.sink->close(nullptr);
  CHECK(fx.sink->state() == SinkState::kStopped);
  fx.sink.reset();
  fx.loop.runUntilIdle();
}

// A resolver for names that resolve to several addresses: the test decides what each name is.
namespace {

sockaddr_storage loopbackAddress(int family, uint16_t port) {
  sockaddr_storage ss{};
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    in6->sin6_port = htons(port);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in->sin_port = htons(port);
  }
  return ss;
}

}  // namespace

TEST_CASE("TcpSink tries every address a name resolves to, IPv6 and IPv4, in order") {
  Fixture fx;
  TestSocket v4(0, AF_INET), v6(0, AF_INET6);
  bool v6_first = GENERATE(true, false);
  CAPTURE(v6_first);
  // The first address the name resolves to refuses (bound, not listening); the second listens.
  TestSocket& listening = v6_first ? v4 : v6;
  listening.listen();
  std::vector<sockaddr_storage> resolved = {loopbackAddress(AF_INET6, v6.port()),
                                            loopbackAddress(AF_INET, v4.port())};
  if (!v6_first) std::swap(resolved[0], resolved[1]);
  std::vector<std::string> asked;
  fx.cfg.addresses = {{"collector.test", 514}};
  fx.sink = std::make_unique<TcpSink>(fx.loop.get(), "tcp", fx.cfg, fx.listener, 512 * 1024);
  fx.sink->connection().setResolverForTesting(
      [&](const sys::HostPort& hp, TcpConnection::Resolved done) {
        asked.push_back(hp.toString());
        done(0, resolved);
      });
  REQUIRE(fx.sink->start().isOk());
  Peer peer = fx.acceptFrom(listening);
  CHECK(asked == std::vector<std::string>{"collector.test:514"});  // no second round needed
  CHECK(fx.sink->connection().currentPeer() == listening.address());
  CHECK(fx.sink->stats().connects == 1);
  std::string a = numberedLines(0, 10);
  fx.feed(a, 0);
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return peer.data.size() >= a.size();
  }));
  CHECK(peer.data == a);
}

TEST_CASE("TcpSink moves to the next configured address once every resolved one failed") {
  Fixture fx;
  TestSocket refusing4(0, AF_INET), refusing6(0, AF_INET6), server;
  server.listen();
  std::vector<std::string> asked;
  fx.cfg.addresses = {{"first.test", 514}, {"second.test", 514}};
  fx.cfg.backoff.initial = std::chrono::milliseconds(10000);  // a backoff would time the test out
  fx.sink = std::make_unique<TcpSink>(fx.loop.get(), "tcp", fx.cfg, fx.listener, 512 * 1024);
  fx.sink->connection().setResolverForTesting(
      [&](const sys::HostPort& hp, TcpConnection::Resolved done) {
        asked.push_back(hp.host);
        if (hp.host == "first.test") {
          done(0, {loopbackAddress(AF_INET6, refusing6.port()),
                   loopbackAddress(AF_INET, refusing4.port())});
        } else {
          done(0, {loopbackAddress(AF_INET, server.port())});
        }
      });
  REQUIRE(fx.sink->start().isOk());
  Peer peer = fx.acceptFrom(server);
  CHECK(asked == std::vector<std::string>{"first.test", "second.test"});
  CHECK(fx.sink->currentAddress().host == "second.test");
}

TEST_CASE("TcpSink::close calls back only once its handles have closed") {
  Fixture fx;
  TestSocket server;
  server.listen();
  fx.start({server.address()});
  Peer peer = fx.acceptFrom(server);
  bool closed = false;
  fx.sink->close([&] { closed = true; });
  CHECK_FALSE(closed);  // the handles' close callbacks have not run yet
  CHECK(fx.sink->state() == SinkState::kStopped);
  fx.loop.runUntilIdle();
  CHECK(closed);
}
