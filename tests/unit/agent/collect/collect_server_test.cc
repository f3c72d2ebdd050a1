#include "agent/collect/collect_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "outputs/mirror_protocol.h"
#include "tests/support/fake_sys_calls.h"
#include "tests/support/test_env.h"

namespace mp = logsplice::outputs::mirror;
using logsplice::agent::collect::CollectServer;
using logsplice::testing::FakeSysCalls;
using logsplice::testing::Loop;
using logsplice::testing::readFile;
using logsplice::testing::TempDir;

namespace {

constexpr const char* kToken = "unit-test-token";

// A hand-driven agent: sends raw bytes, collects what the collector answers.
class Peer {
 public:
  explicit Peer(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~Peer() { ::close(fd_); }
  void send(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  // Sends what it can of bytes[*off..] without blocking; true once all of it is sent.
  bool trySend(const std::string& bytes, size_t* off) {
    ssize_t n = ::send(fd_, bytes.data() + *off, bytes.size() - *off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) *off += static_cast<size_t>(n);
    return *off == bytes.size();
  }
  // Reads what arrived; true once the collector closed.
  bool poll() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN)) closed_ = true;
      break;
    }
    while (in_.size() >= mp::kHeaderBytes) {
      auto h = mp::decodeHeader(in_.data());
      REQUIRE(h);
      if (in_.size() < mp::kHeaderBytes + h->length) break;
      msgs_.push_back({*h, in_.substr(mp::kHeaderBytes, h->length)});
      in_.erase(0, mp::kHeaderBytes + h->length);
    }
    return closed_;
  }
  // The last message of `type` received, or null.
  const std::pair<mp::Header, std::string>* last(mp::Type type) {
    poll();
    for (auto it = msgs_.rbegin(); it != msgs_.rend(); ++it) {
      if (it->first.type == type) return &*it;
    }
    return nullptr;
  }
  bool closed() { return poll(); }

 private:
  int fd_ = -1;
  std::string in_;
  bool closed_ = false;
  std::vector<std::pair<mp::Header, std::string>> msgs_;
};

std::string hello(const std::string& host = "web-1") {
  return mp::encodeHello({mp::kVersion, host, "unit", kToken});
}

std::string open(uint32_t id, uint64_t ino) {
  return mp::encodeOpen(id, mp::Open{1, ino, 0, 0, 0, "app", "/var/log/app.log"});
}

std::string data(uint32_t id, uint64_t offset, const std::string& bytes) {
  std::string out(mp::kHeaderBytes, '\0');
  mp::encodeHeader({mp::Type::kData, id, offset, bytes.size()}, out.data());
  return out + bytes;
}

struct Fixture {
  TempDir tmp;
  Loop loop;
  FakeSysCalls sys;
  std::unique_ptr<CollectServer> server;

  explicit Fixture(logsplice::config::Millis idle = logsplice::config::Millis(5000),
                   uint64_t min_free = 0) {
    logsplice::config::CollectConfig cfg;
    cfg.listen = {"127.0.0.1", 0};
    cfg.dir = tmp / "mirror";
    cfg.tokens["web-1"] = kToken;
    cfg.tokens["web-2"] = kToken;
    cfg.fsync_interval = logsplice::config::Millis(20);
    cfg.idle_timeout = idle;
    cfg.max_frame = 1 << 20;
    cfg.min_free = min_free;
    server = std::make_unique<CollectServer>(loop.get(), cfg, sys);
    REQUIRE_FALSE(server->start());
  }
  ~Fixture() {
    server->stop();
    server.reset();
    loop.runUntilIdle();
  }
  std::string mirror(const std::string& host = "web-1") {
    return readFile(tmp / ("mirror/" + host + "/app/var/log/app.log"));
  }
};

}  // namespace

TEST_CASE("collect server: data lands at its offset, acked only once durable", "[collect]") {
  Fixture f;
  Peer p(f.server->port());
  p.send(hello() + open(1, 10));
  REQUIRE(f.loop.waitFor([&] { return p.last(mp::Type::kOpened) != nullptr; }));
  CHECK(p.last(mp::Type::kOpened)->first.offset == 0);
  p.send(data(1, 0, "one\ntwo\n"));
  REQUIRE(f.loop.waitFor([&] {
    auto* ack = p.last(mp::Type::kAck);
    return ack && ack->first.offset == 8;
  }));
  CHECK(f.mirror() == "one\ntwo\n");
  SECTION("a replay is discarded, only the new bytes are written") {
    p.send(data(1, 4, "two\nthree\n"));
    REQUIRE(f.loop.waitFor([&] {
      auto* ack = p.last(mp::Type::kAck);
      return ack && ack->first.offset == 14;
    }));
    CHECK(f.mirror() == "one\ntwo\nthree\n");
  }
  SECTION("a gap closes the connection with ERROR gap") {
    p.send(data(1, 20, "x"));
    REQUIRE(f.loop.waitFor([&] { return p.closed(); }));
    auto* err = p.last(mp::Type::kError);
    REQUIRE(err);
    CHECK(err->first.offset == static_cast<uint64_t>(mp::ErrorCode::kGap));
    CHECK(f.mirror() == "one\ntwo\n");
  }
  SECTION("a new session resumes at the durable length") {
    Peer again(f.server->port());
    again.send(hello() + open(5, 10));
    REQUIRE(f.loop.waitFor([&] { return again.last(mp::Type::kOpened) != nullptr; }));
    CHECK(again.last(mp::Type::kOpened)->first.offset == 8);
    // The old session had the stream: it is dropped, the new one owns it.
    REQUIRE(f.loop.waitFor([&] { return p.closed(); }));
  }
}

TEST_CASE("collect server: disk full stops acks and reading, then resumes", "[collect]") {
  Fixture f(logsplice::config::Millis(300));  // a pause longer than idle_timeout is no stall
  bool full = true;
  f.sys.on_splice = [&](int, loff_t*, int, loff_t* off_out, size_t,
                        unsigned) -> std::optional<logsplice::sys::SysResult> {
    if (full && off_out != nullptr) return FakeSysCalls::fail(ENOSPC);  // pipe -> mirror file
    return std::nullopt;
  };
  Peer p(f.server->port());
  p.send(hello() + open(1, 10) + data(1, 0, "payload\n"));
  REQUIRE(f.loop.waitFor([&] { return p.last(mp::Type::kOpened) != nullptr; }));
  f.loop.runFor(1500);
  CHECK(p.last(mp::Type::kAck) == nullptr);
  CHECK_FALSE(p.closed());
  full = false;
  REQUIRE(f.loop.waitFor(
      [&] {
        auto* ack = p.last(mp::Type::kAck);
        return ack && ack->first.offset == 8;
      },
      4000));
  CHECK(f.mirror() == "payload\n");
}

TEST_CASE("collect server: under limits.min_free nothing is written, acked or dropped",
          "[collect]") {
  // More free space asked for than any filesystem has: the collector writes nothing.
  Fixture f(logsplice::config::Millis(300), uint64_t{1} << 62);
  Peer p(f.server->port());
  p.send(hello() + open(1, 10) + data(1, 0, "payload\n"));
  REQUIRE(f.loop.waitFor([&] { return p.last(mp::Type::kOpened) != nullptr; }));
  f.loop.runFor(1500);  // past idle_timeout and a retry: a pause for space is no stall
  CHECK(p.last(mp::Type::kAck) == nullptr);
  CHECK_FALSE(p.closed());
  CHECK(f.server->writeRoom() == 0);
  CHECK(f.server->freeBytes() > 0);
  CHECK(f.mirror().empty());
}

TEST_CASE("collect server: hostile input closes that connection only", "[collect]") {
  Fixture f(logsplice::config::Millis(300));
  Peer good(f.server->port());
  good.send(hello("web-2") + open(1, 10));
  REQUIRE(f.loop.waitFor([&] { return good.last(mp::Type::kOpened) != nullptr; }));

  Peer bad(f.server->port());
  uint64_t want_code = 0;
  SECTION("a frame claiming 1 TiB") {
    std::string h(mp::kHeaderBytes, '\0');
    mp::encodeHeader({mp::Type::kData, 1, 0, 1ull << 40}, h.data());
    bad.send(hello() + open(1, 11) + h);
    want_code = static_cast<uint64_t>(mp::ErrorCode::kLimit);
  }
  SECTION("a wrong token") {
    bad.send(mp::encodeHello({mp::kVersion, "web-1", "x", "not-the-token"}));
    want_code = static_cast<uint64_t>(mp::ErrorCode::kAuth);
  }
  SECTION("an unknown host") {
    bad.send(hello("db-9"));
    want_code = static_cast<uint64_t>(mp::ErrorCode::kAuth);
  }
  SECTION("data before hello") {
    bad.send(data(1, 0, "x"));
    want_code = static_cast<uint64_t>(mp::ErrorCode::kProtocol);
  }
  SECTION("a stall in the middle of a frame") {
    std::string h(mp::kHeaderBytes, '\0');
    mp::encodeHeader({mp::Type::kData, 1, 0, 100}, h.data());
    bad.send(hello() + open(1, 12) + h + "only some");
    want_code = static_cast<uint64_t>(mp::ErrorCode::kTimeout);
  }
  // The good agent keeps talking (as an agent's keepalives do) while the bad one stalls.
  auto last_keepalive = std::chrono::steady_clock::now();
  REQUIRE(f.loop.waitFor([&] {
    if (std::chrono::steady_clock::now() - last_keepalive > std::chrono::milliseconds(50)) {
      good.send(mp::encodeSimple(mp::Type::kKeepalive, 0, 0));
      last_keepalive = std::chrono::steady_clock::now();
    }
    return bad.closed();
  }));
  auto* err = bad.last(mp::Type::kError);
  REQUIRE(err);
  CHECK(err->first.offset == want_code);
  // The good agent is unaffected: it still writes and gets acks.
  good.send(data(1, 0, "still here\n"));
  REQUIRE(f.loop.waitFor([&] {
    auto* ack = good.last(mp::Type::kAck);
    return ack && ack->first.offset == 11;
  }));
  CHECK_FALSE(good.closed());
  CHECK(f.mirror("web-2") == "still here\n");
}

TEST_CASE("collect server: messages packed into one write, split headers, large frames",
          "[collect]") {
  // The collector reads the socket ahead into its pipe across message boundaries: whatever
  // way the bytes arrive, each message is taken whole and the payload lands at its offset.
  Fixture f;
  Peer p(f.server->port());
  std::string big(600 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::string want = "first\n" + big + "x\n";
  std::string burst = hello() + open(1, 10) + data(1, 0, "first\n") + data(1, 6, big) +
                      mp::encodeSimple(mp::Type::kKeepalive, 0, 0) + data(1, 6 + big.size(), "x\n");
  size_t off = 0;
  REQUIRE(f.loop.waitFor([&] { return p.trySend(burst, &off); }));
  REQUIRE(f.loop.waitFor([&] {
    auto* ack = p.last(mp::Type::kAck);
    return ack && ack->first.offset == want.size();
  }));
  // A header that arrives in two pieces, with a pause between them.
  std::string tail = data(1, want.size(), "tail\n");
  p.send(tail.substr(0, 10));
  f.loop.runFor(50);
  CHECK_FALSE(p.closed());
  p.send(tail.substr(10));
  want += "tail\n";
  REQUIRE(f.loop.waitFor([&] {
    auto* ack = p.last(mp::Type::kAck);
    return ack && ack->first.offset == want.size();
  }));
  CHECK_FALSE(p.closed());
  CHECK(f.mirror() == want);
}
