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
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::numberedLines;
using logsplice::testing::RecordingListener;

namespace {

// A socket bound to 127.0.0.1 on a free port. Listening or not: a bound socket that does not
// listen refuses connections, and keeps its port from being taken meanwhile.
class TestSocket {
 public:
  explicit TestSocket(int rcvbuf = 0) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    REQUIRE(fd_.valid());
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rcvbuf > 0) {
      REQUIRE(::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  void listen() { REQUIRE(::listen(fd_.get(), 16) == 0); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // A connection accepted now, or an invalid fd.
  sys::UniqueFd accept() {
    return sys::UniqueFd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  }

 private:
  sys::UniqueFd fd_;
  uint16_t port_ = 0;
};

// The collector's side of one connection: reads what is there, notices the end.
struct Peer {
  sys::UniqueFd fd;
  std::string data;
  bool eof = false;
  void read() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        data.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      break;
    }
  }
};

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
  Peer acceptFrom(TestSocket& server) {
    Peer p;
    REQUIRE(loop.waitFor([&] {
      if (!p.fd.valid()) p.fd = server.accept();
      return p.fd.valid() && sink->state() == SinkState::kConnected;
    }));
    return p;
  }
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
