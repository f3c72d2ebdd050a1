// The mirror protocol over TLS: MirrorSink with `tls:` against a CollectServer with collect.tls
// on the same loop, over loopback. A host without a token authenticates by a client
// certificate naming it; the payload crosses both ends byte-exact and is counted as copied
// where userspace TLS handles it; a client without a certificate fails the handshake.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "agent/collect/collect_server.h"
#include "outputs/mirror_sink.h"
#include "tests/support/recording_listener.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_test_certs.h"

using namespace logsplice;
using logsplice::agent::collect::CollectServer;
using logsplice::outputs::MirrorSink;
using logsplice::outputs::Segment;
using logsplice::outputs::SourceInfo;

namespace {

// The host name the test client certificate carries (CN and DNS SAN).
constexpr const char* kCertHost = "logsplice-agent";

struct TlsFixture {
  testing::TempDir tmp;
  testing::TlsTestCerts certs{tmp.path()};
  testing::Loop loop;
  testing::RecordingListener listener;
  std::unique_ptr<CollectServer> server;
  std::unique_ptr<MirrorSink> sink;
  std::shared_ptr<const SourceInfo> source = std::make_shared<const SourceInfo>(
      SourceInfo{"app", "/var/log/app.log", "app.log", 1, 42, 0, 0});

  TlsFixture() {
    config::CollectConfig cfg;
    cfg.listen = {"127.0.0.1", 0};
    cfg.dir = tmp / "mirror";
    cfg.fsync_interval = config::Millis(20);
    auto& t = cfg.tls.emplace();
    t.cert_file = certs.path("server.pem");
    t.key_file = certs.path("server.key");
    t.ca_file = certs.path("ca.pem");
    server = std::make_unique<CollectServer>(loop.get(), cfg);
    REQUIRE_FALSE(server->start());
  }
  ~TlsFixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    server->stop();
    server.reset();
    loop.runUntilIdle();
  }
  void startSink(const std::string& host, bool client_cert) {
    config::LogspliceOutput cfg;
    cfg.tcp.addresses.push_back({"127.0.0.1", server->port()});
    cfg.tcp.backoff.initial = config::Millis(20);
    cfg.tcp.backoff.max = config::Millis(100);
    auto& t = cfg.tcp.tls.emplace();
    t.ca_file = certs.path("ca.pem");
    if (client_cert) {
      t.cert_file = certs.path("client.pem");
      t.key_file = certs.path("client.key");
    }
    sink = std::make_unique<MirrorSink>(loop.get(), "mirror", cfg, host, listener, 1 << 20);
    REQUIRE_FALSE(sink->start());
  }
  void feed(const std::string& bytes, uint64_t offset) {
    REQUIRE(::write(sink->pipe().writeFd(), bytes.data(), bytes.size()) ==
            static_cast<ssize_t>(bytes.size()));
    Segment seg;
    seg.file_id = 1;
    seg.offset = offset;
    seg.length = bytes.size();
    seg.source = source;
    sink->appended(seg);
  }
  std::string mirror(const std::string& host) {
    return testing::readFile(tmp / ("mirror/" + host + "/app/var/log/app.log"));
  }
};

std::string payload(size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) s += "line " + std::to_string(i) + " of the TLS test\n";
  s.resize(n);
  s.back() = '\n';
  return s;
}

}  // namespace

TEST_CASE("collect TLS: a certificate naming the host stands for the token; bytes are exact",
          "[collect][tls]") {
  TlsFixture f;
  f.startSink(kCertHost, true);
  REQUIRE(f.loop.waitFor([&] { return f.sink->sessionUp(); }, 5000));
  // Larger than a frame's worth of records and than one userspace read: several of each.
  const std::string bytes = payload(300 * 1024);
  f.feed(bytes, 0);
  REQUIRE(f.loop.waitFor([&] { return f.listener.deliveredOf(1) == bytes.size(); }, 10000));
  CHECK(f.mirror(kCertHost) == bytes);
  // No kTLS here or there: both ends moved the payload through their memory, and say so.
  if (!f.sink->ktlsInUse()) CHECK(f.sink->stats().bytes_copied >= bytes.size());
  CHECK(f.server->copiedBytes() == bytes.size());
  CHECK(f.sink->handshakeFailures() == 0);
}

TEST_CASE("collect TLS: a certificate naming another host is refused", "[collect][tls]") {
  TlsFixture f;
  f.startSink("web-1", true);
  f.feed("x\n", 0);
  f.loop.runFor(400);
  CHECK_FALSE(f.sink->sessionUp());
  CHECK(f.listener.deliveredOf(1) == 0);
  CHECK(f.server->hostStats("web-1").connections == 0);
}

TEST_CASE("collect TLS: a client without a certificate fails the handshake", "[collect][tls]") {
  TlsFixture f;
  f.startSink(kCertHost, false);
  f.feed("x\n", 0);
  REQUIRE(f.loop.waitFor([&] { return f.sink->handshakeFailures() > 0; }, 5000));
  CHECK_FALSE(f.sink->sessionUp());
  CHECK(f.listener.deliveredOf(1) == 0);
}
