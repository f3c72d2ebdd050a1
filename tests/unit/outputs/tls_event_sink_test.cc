// TLS to a collector: a TlsEventSink with the raw framer (each line as is) against a small
// OpenSSL server on 127.0.0.1, with certificates the test makes. The test plays the router:
// it writes each segment into the sink's pipe and calls appended(), and resends on a rewind.
// Checked: every line arrives in order; a wrong CA or a name mismatch is refused with a clear
// reason and loses nothing (a reload with the good CA delivers everything); mutual TLS; a
// server restart mid-stream loses nothing; bytes_copied counts the plaintext.

#include "outputs/tls_event_sink.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "outputs/ktls.h"
#include "outputs/tls_context.h"
#include "sys/metrics.h"
#include "tests/support/recording_listener.h"
#include "tests/support/recording_metric_writer.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_test_certs.h"
#include "tests/support/tls_test_server.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::RecordingListener;
using logsplice::testing::TlsTestCerts;
using logsplice::testing::TlsTestServer;

namespace {

std::string lines(int first, int count, size_t width = 100) {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    std::string line = "line-" + std::to_string(i) + " ";
    line.resize(width - 1, static_cast<char>('a' + i % 26));
    out += line + '\n';
  }
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// The lines received, each kept at its first arrival (a resend repeats some): nothing lost
// and in order means this is exactly what was sent.
std::vector<std::string> firstArrivals(const std::string& received) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& l : split(received)) {
    if (seen.insert(l).second) out.push_back(l);
  }
  return out;
}

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  testing::TempDir dir;
  TlsTestCerts certs{dir.path()};
  RecordingListener listener;
  config::TcpOutput cfg;
  std::unique_ptr<TlsEventSink> sink;
  std::shared_ptr<const SourceInfo> source =
      std::make_shared<const SourceInfo>(SourceInfo{"in", "/var/log/app.log", "app.log"});
  std::string content;  // file 1
  uint64_t fed = 0;
  std::vector<SinkListener::Rewind> pending_rewind;

  Fixture() {
    cfg.backoff.initial = std::chrono::milliseconds(20);
    cfg.backoff.max = std::chrono::milliseconds(100);
    cfg.connect_timeout = std::chrono::milliseconds(2000);
    cfg.tls.emplace();
    cfg.tls->ca_file = certs.path("ca.pem");
    listener.on_rewind = [this](const std::vector<SinkListener::Rewind>& r) { pending_rewind = r; };
  }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    loop.runUntilIdle();
  }
  void start(const std::string& address) {
    auto hp = sys::parseHostPort(address);
    REQUIRE(hp.ok());
    cfg.addresses = {hp.value()};
    sink = std::make_unique<TlsEventSink>(loop.get(), "tls-out", cfg, listener, 512 * 1024,
                                          std::make_unique<RawLineFramer>());
    auto err = sink->start();
    INFO(err.toString());
    REQUIRE(err.isOk());
  }
  // Bytes of file 1 from `offset` into the pipe (as much as it takes), as the router does.
  void feedFrom(uint64_t offset) {
    while (offset < content.size()) {
      ssize_t n = ::write(sink->pipe().writeFd(), content.data() + offset, content.size() - offset);
      if (n <= 0) break;
      Segment seg;
      seg.file_id = 1;
      seg.offset = offset;
      seg.length = static_cast<uint64_t>(n);
      seg.ends_line = content[offset + static_cast<size_t>(n) - 1] == '\n';
      seg.source = source;
      sink->appended(seg);
      fed += static_cast<uint64_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    fed_to = offset;
  }
  uint64_t fed_to = 0;
  // The router's side, run from every wait: resend after a rewind, refill the pipe.
  void routerStep() {
    if (!pending_rewind.empty()) {
      uint64_t from = pending_rewind.front().offset;
      pending_rewind.clear();
      feedFrom(from);
    } else if (fed_to < content.size()) {
      feedFrom(fed_to);
    }
  }
  bool deliverAll(TlsTestServer& server, uint64_t timeout_ms = 10000) {
    return loop.waitFor(
        [&] {
          routerStep();
          server.pump();
          return listener.deliveredOf(1) == content.size();
        },
        timeout_ms);
  }
};

}  // namespace

TEST_CASE("TLS: every line arrives in order, and bytes_copied counts the plaintext") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  fx.content = lines(0, 5000);  // 500 KB: many records
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  CHECK(server.handshakes == 1);
  CHECK(fx.sink->negotiated() == server.protocol + " " + server.cipher);
  CHECK(server.protocol == "TLSv1.3");
  CHECK(fx.sink->state() == SinkState::kConnected);
  CHECK(fx.sink->stats().bytes_copied == fx.content.size());
  CHECK(fx.sink->stats().bytes_sent == fx.content.size());
  CHECK(fx.sink->handshakeFailures() == 0);
  CHECK_FALSE(fx.sink->ktlsInUse());
}

TEST_CASE("TLS: the configured cipher suites are the ones negotiated") {
  Fixture fx;
  fx.cfg.tls->ciphersuites = "TLS_AES_128_GCM_SHA256";
  fx.cfg.tls->ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  fx.content = lines(0, 200);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  CHECK(server.cipher == "TLS_AES_128_GCM_SHA256");
}

TEST_CASE("TLS: a wrong CA is refused with its reason; a reload with the good CA delivers all") {
  Fixture fx;
  // The CA file names another CA: the server's certificate does not verify.
  const std::string ca = fx.dir.path() + "/trusted.pem";
  testing::writeFile(ca, testing::readFile(fx.certs.path("other-ca.pem")));
  fx.cfg.tls->ca_file = ca;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  fx.content = lines(0, 300);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    server.pump();
    return fx.sink->handshakeFailures() >= 2;
  }));
  CHECK(fx.sink->state() != SinkState::kConnected);
  CHECK(fx.listener.deliveredOf(1) == 0);
  CHECK(server.data.empty());
  CHECK(fx.listener.rewinds.empty());  // nothing left the pipe
  CHECK_THAT(server.last_error, Catch::Contains("alert"));
  CHECK_THAT(fx.sink->lastHandshakeFailure(),
             Catch::Contains("certificate verify failed") &&
                 Catch::Contains("unable to get local issuer certificate"));

  // The good CA in the same file, and a reload (SIGHUP): everything arrives.
  testing::writeFile(ca, testing::readFile(fx.certs.path("ca.pem")));
  REQUIRE(fx.sink->reloadTls().isOk());
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
}

TEST_CASE("TLS: a name mismatch is refused and nothing is delivered") {
  Fixture fx;
  fx.cfg.tls->server_name = "collector.example";
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  fx.content = lines(0, 50);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    server.pump();
    return fx.sink->handshakeFailures() >= 1;
  }));
  fx.loop.runFor(100);
  CHECK(fx.listener.deliveredOf(1) == 0);
  CHECK(server.data.empty());
  CHECK(server.handshakes == 0);
  CHECK_THAT(fx.sink->lastHandshakeFailure(), Catch::Contains("hostname mismatch"));
  // The metric says it too.
  testing::RecordingMetricWriter w;
  fx.sink->collectMetrics(w);
  auto failures = w.find("logsplice_tls_handshake_failures_total", {{"output", "tls-out"}});
  REQUIRE(failures);
  CHECK(failures->value >= 1);
  auto ktls = w.find("logsplice_tls_ktls", {{"output", "tls-out"}});
  REQUIRE(ktls);
  CHECK(ktls->value == 0);
}

TEST_CASE("TLS: the name verified defaults to the address's host (127.0.0.1 is in the SAN)") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("other-server.pem"), fx.certs.path("other-server.key"));
  fx.cfg.tls->ca_file = fx.certs.path("other-ca.pem");
  fx.start(server.address());
  fx.content = lines(0, 20);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  CHECK(fx.sink->handshakeFailures() == 0);
}

TEST_CASE("TLS: mutual TLS is accepted with the agent's certificate") {
  Fixture fx;
  fx.cfg.tls->cert_file = fx.certs.path("client.pem");
  fx.cfg.tls->key_file = fx.certs.path("client.key");
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"),
                       fx.certs.path("ca.pem"));
  fx.start(server.address());
  fx.content = lines(0, 1000);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  CHECK(server.client_cert);
}

TEST_CASE("TLS: mutual TLS is refused without a client certificate, and nothing is lost") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"),
                       fx.certs.path("ca.pem"));
  fx.start(server.address());
  fx.content = lines(0, 100);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    fx.routerStep();
    server.pump();
    return server.handshake_failures >= 2 && fx.sink->handshakeFailures() >= 2;
  }));
  fx.loop.runFor(300);
  CHECK(fx.listener.deliveredOf(1) == 0);  // TLS 1.3: nothing counted before the server agreed
  CHECK_THAT(fx.sink->lastHandshakeFailure(), Catch::Contains("client certificate"));
  CHECK(server.data.empty());
  CHECK(server.handshakes == 0);
}

TEST_CASE("TLS: a collector restart mid-stream loses nothing") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  fx.content = lines(0, 20000);  // 2 MB: the pipe refills many times
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    fx.routerStep();
    return server.pump().size() > 300 * 1000;
  }));
  server.drop();  // the collector goes away with whatever it had not acknowledged
  REQUIRE(fx.deliverAll(server, 20000));
  REQUIRE(fx.loop.waitFor([&] {
    server.pump();
    return firstArrivals(server.data).size() >= 20000;
  }));
  CHECK(server.handshakes == 2);
  CHECK(fx.sink->stats().disconnects == 1);
  CHECK(firstArrivals(server.data) == split(fx.content));
  // Every line arrived whole (a resend starts at a line start).
  for (const auto& l : split(server.data)) REQUIRE(l.size() == 99);
}

TEST_CASE("TLS context: a bad new certificate on reload keeps the old context") {
  testing::TempDir dir;
  TlsTestCerts certs(dir.path());
  config::TlsConfig cfg;
  cfg.ca_file = certs.path("ca.pem");
  const std::string cert = dir.path() + "/agent.pem", key = dir.path() + "/agent.key";
  testing::writeFile(cert, testing::readFile(certs.path("client.pem")));
  testing::writeFile(key, testing::readFile(certs.path("client.key")));
  cfg.cert_file = cert;
  cfg.key_file = key;
  auto ctx = TlsContext::create("out", cfg);
  REQUIRE(ctx.ok());
  SSL_CTX* before = ctx.value()->get();
  // An expired certificate replaces the good one: refused, the old context stays.
  testing::writeFile(cert, testing::readFile(certs.path("expired.pem")));
  testing::writeFile(key, testing::readFile(certs.path("expired.key")));
  sys::Error err = ctx.value()->reload();
  CHECK_FALSE(err.isOk());
  CHECK_THAT(err.toString(), Catch::Contains("expired") && Catch::Contains(cert));
  CHECK(ctx.value()->get() == before);
  // A key that does not match.
  testing::writeFile(cert, testing::readFile(certs.path("client.pem")));
  testing::writeFile(key, testing::readFile(certs.path("server.key")));
  err = ctx.value()->reload();
  CHECK_THAT(err.toString(), Catch::Contains("does not match"));
  CHECK(ctx.value()->get() == before);
  // The good files again: a new context.
  testing::writeFile(key, testing::readFile(certs.path("client.key")));
  CHECK(ctx.value()->reload().isOk());
  CHECK(ctx.value()->get() != before);
}

TEST_CASE("TLS context: ktls require refuses to start without kernel kTLS, saying why") {
  // The sinks decide (outputs/ktls.h) before building the context.
  const ktls::Plan p = ktls::plan(config::KtlsMode::kRequire, true, kernelHasKtls());
  if (kernelHasKtls()) {
    CHECK(p.refusal.empty());  // the kernel can have it: TlsStreamSink checks what OpenSSL did
  } else {
    CHECK_THAT(p.refusal, Catch::Contains("tcp_available_ulp"));
  }
}

TEST_CASE("TLS: ktls require with a framed format is refused at start, saying why") {
  Fixture fx;
  fx.cfg.tls->ktls = config::KtlsMode::kRequire;
  fx.cfg.format = config::EventFormat::kJson;
  fx.cfg.addresses = {sys::parseHostPort("127.0.0.1:9").value()};
  TlsEventSink sink(fx.loop.get(), "tls-out", fx.cfg, fx.listener, 64 * 1024,
                    std::make_unique<RawLineFramer>());
  sys::Error err = sink.start();
  REQUIRE_FALSE(err.isOk());
  CHECK_THAT(err.toString(), Catch::Contains("format: raw"));
  sink.close(nullptr);
  fx.loop.runUntilIdle();
}

TEST_CASE("TLS: a line longer than the read buffer arrives whole, delivered once complete") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  std::string long_line(700 * 1024, 'L');  // the event sink's read buffer is 256 KiB
  fx.content = lines(0, 3) + long_line + "\n" + lines(3, 3);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  // Delivery points are line ends only: never inside the long line.
  for (const auto& d : fx.listener.deliveries) {
    CAPTURE(d.offset_end);
    CHECK((d.offset_end <= 300 || d.offset_end >= 300 + long_line.size() + 1));
  }
}

TEST_CASE("TLS: verify false connects to a collector whose certificate does not verify") {
  Fixture fx;
  fx.cfg.tls->ca_file = fx.certs.path("other-ca.pem");
  fx.cfg.tls->server_name = "collector.example";
  fx.cfg.tls->verify = false;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  fx.start(server.address());
  fx.content = lines(0, 10);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  CHECK(fx.sink->handshakeFailures() == 0);
}
