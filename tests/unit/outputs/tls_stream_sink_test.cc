// A raw TLS output (TlsStreamSink) against a small OpenSSL server on 127.0.0.1, the test
// playing the router. OpenSSL does the handshake on the socket; where the kernel offers kTLS the
// sink asks for it and splices, elsewhere (this machine: no `tls` ULP) it writes full records
// from userspace, copies counted. The test that needs the kernel's kTLS prints why it does not
// run where the kernel lacks it.

#include "outputs/tls_stream_sink.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "outputs/tls_context.h"
#include "sys/tcp_ulp.h"
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

// The lines received, each at its first arrival (a resend repeats some). A connection cut in
// the middle of a record leaves the collector a fragment of a line before the line arrives
// again whole (as over plain TCP: README, guarantees); `fragments` counts those. The test
// server's lines must start with "line-".
std::string firstArrivals(const std::string& received, const std::string& sent,
                          int* fragments = nullptr) {
  std::set<std::string> wanted, seen;
  for (size_t pos = 0, nl; (nl = sent.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    wanted.insert(sent.substr(pos, nl - pos + 1));
  }
  std::string out;
  int broken = 0;
  for (size_t pos = 0, nl; (nl = received.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    std::string l = received.substr(pos, nl - pos + 1);
    if (!wanted.count(l)) {
      // The server keeps one string for all connections: the fragment the cut left runs into
      // the whole line sent again on the next connection.
      ++broken;
      size_t start = l.rfind("line-");
      if (start == std::string::npos || start == 0) continue;
      l = l.substr(start);
      if (!wanted.count(l)) continue;
    }
    if (seen.insert(l).second) out += l;
  }
  if (fragments) *fragments = broken;
  return out;
}

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  testing::TempDir dir;
  TlsTestCerts certs{dir.path()};
  RecordingListener listener;
  config::TcpOutput cfg;
  std::unique_ptr<TlsStreamSink> sink;
  std::shared_ptr<const SourceInfo> source =
      std::make_shared<const SourceInfo>(SourceInfo{"in", "/var/log/app.log", "app.log"});
  std::string content;
  uint64_t fed_to = 0;
  std::vector<SinkListener::Rewind> pending_rewind;

  Fixture() {
    // As the agent's main: a write to a socket the other side reset (the test server writing
    // its session tickets to a client that refused the session) must be EPIPE, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
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
  sys::Error start(const std::string& address, std::optional<ktls::Plan> plan = std::nullopt) {
    auto hp = sys::parseHostPort(address);
    REQUIRE(hp.ok());
    cfg.addresses = {hp.value()};
    sink = std::make_unique<TlsStreamSink>(loop.get(), "tls-out", cfg, listener, 512 * 1024);
    if (plan) sink->setKtlsPlanForTesting(*plan);
    return sink->start();
  }
  void feedFrom(uint64_t offset) {
    // As the router: a rewind during appended() (the send failed) ends this fill; what follows
    // comes from the rewind point.
    const uint64_t epoch = sink->epoch();
    while (offset < content.size() && sink->epoch() == epoch) {
      ssize_t n = ::write(sink->pipe().writeFd(), content.data() + offset, content.size() - offset);
      if (n <= 0) break;
      Segment seg;
      seg.file_id = 1;
      seg.offset = offset;
      seg.length = static_cast<uint64_t>(n);
      seg.ends_line = content[offset + static_cast<size_t>(n) - 1] == '\n';
      seg.source = source;
      sink->appended(seg);
      offset += static_cast<uint64_t>(n);
    }
    fed_to = offset;
  }
  void routerStep() {
    if (!pending_rewind.empty()) {
      // As the router does: from the line start at or before the first unacknowledged byte (a
      // stream sink's acknowledgements end where records end, not where lines do).
      uint64_t from = pending_rewind.front().offset;
      while (from > 0 && content[from - 1] != '\n') --from;
      pending_rewind.clear();
      feedFrom(from);
    } else if (fed_to < content.size() && sink->room() > 0) {
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
  double gauge(const char* name) {
    testing::RecordingMetricWriter w;
    sink->collectMetrics(w);
    auto sample = w.find(name, {{"output", "tls-out"}});
    REQUIRE(sample);
    return sample->value;
  }
};

}  // namespace

TEST_CASE(
    "tls stream sink auto: every line arrives on the path OpenSSL gave; gauge and copies say which",
    "[ktls]") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  REQUIRE(fx.start(server.address()).isOk());
  fx.content = lines(0, 5000);  // 500 KB: many records
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  CHECK(server.handshakes == 1);
  CHECK(fx.sink->negotiated() == server.protocol + " " + server.cipher);
  CHECK(fx.sink->state() == SinkState::kConnected);
  CHECK(fx.sink->stats().bytes_sent == fx.content.size());
  if (fx.sink->ktlsInUse()) {
    // The kernel encrypted what was spliced: nothing passed through the agent.
    CHECK(fx.sink->path() == TlsStreamSink::Path::kKernel);
    CHECK(fx.sink->stats().bytes_copied == 0);
    CHECK(fx.gauge("logsplice_tls_ktls") == 1);
  } else {
    // OpenSSL kept the send side (this kernel has no kTLS, or not for this cipher): it was
    // asked, not assumed, and the copies are counted.
    CHECK(fx.sink->path() == TlsStreamSink::Path::kUserspace);
    CHECK(fx.sink->stats().bytes_copied == fx.content.size());
    CHECK(fx.gauge("logsplice_tls_ktls") == 0);
  }
  CHECK(fx.gauge("logsplice_tls_handshake_failures_total") == 0);
}

TEST_CASE("tls stream sink: asked for kTLS, it checks the BIO; auto follows OpenSSL's answer",
          "[ktls]") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  ktls::Plan try_kernel;
  try_kernel.try_kernel = true;  // as where the kernel lists the tls ULP
  REQUIRE(fx.start(server.address(), try_kernel).isOk());
  fx.content = lines(0, 3000);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  // Whatever OpenSSL did, the sink's path and the copies match the BIO's answer.
  const bool kernel = fx.sink->ktlsInUse();
  CHECK(kernel == sys::tcpUlpAvailable("tls"));  // here: the request could not be honoured
  CHECK(fx.sink->stats().bytes_copied == (kernel ? 0 : fx.content.size()));
  CHECK(fx.gauge("logsplice_tls_ktls") == (kernel ? 1 : 0));
}

TEST_CASE("tls stream sink: require, and OpenSSL kept the send side: refused, nothing delivered",
          "[ktls]") {
  if (sys::tcpUlpAvailable("tls")) {
    // Here OpenSSL can hand AES-GCM to the kernel; the refusal needs a kernel that cannot.
    const char* why = "SKIPPED: this kernel has kTLS, so OpenSSL does not refuse the request";
    std::cout << "tls_stream_sink_test: " << why << "\n";
    SUCCEED(why);
    return;
  }
  Fixture fx;
  fx.cfg.tls->ktls = config::KtlsMode::kRequire;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  ktls::Plan try_kernel;
  try_kernel.try_kernel = true;  // start() lets require through, as on a kernel with the ULP
  REQUIRE(fx.start(server.address(), try_kernel).isOk());
  fx.content = lines(0, 100);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    server.pump();
    return fx.sink->handshakeFailures() >= 2;
  }));
  CHECK(fx.sink->state() != SinkState::kConnected);
  CHECK(fx.listener.deliveredOf(1) == 0);
  CHECK(server.data.empty());
  CHECK(fx.listener.rewinds.empty());  // nothing left the pipe
  CHECK(fx.sink->stats().bytes_copied == 0);
  CHECK_THAT(fx.sink->lastHandshakeFailure(),
             Catch::Contains("'require'") && Catch::Contains("kept the send side in userspace"));
}

TEST_CASE("tls stream sink: a collector restart mid-stream loses nothing", "[ktls]") {
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  REQUIRE(fx.start(server.address()).isOk());
  // 10 MB: more than loopback's socket buffers hold, so the drop below finds bytes in flight.
  fx.content = lines(0, 100000);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    fx.routerStep();
    return server.pump().size() > 300000;
  }));
  server.drop();  // mid-stream: what its stack had and it did not read is gone
  REQUIRE(fx.deliverAll(server, 20000));
  // The last line arrived: everything before it did (checked below).
  const std::string last = fx.content.substr(fx.content.size() - 100);
  REQUIRE(fx.loop.waitFor([&] {
    server.pump();
    return server.data.size() >= 100 &&
           server.data.compare(server.data.size() - 100, 100, last) == 0;
  }));
  int fragments = 0;
  const std::string got = firstArrivals(server.data, fx.content, &fragments);
  INFO("received " << server.data.size() << " first arrivals " << got.size() << " of "
                   << fx.content.size() << ", first difference at "
                   << std::mismatch(got.begin(), got.end(), fx.content.begin()).first -
                          got.begin());
  CHECK(got == fx.content);
  CHECK(fragments <= 1);  // at most the line the drop cut
  CHECK(server.handshakes == 2);
  CHECK(fx.sink->stats().disconnects == 1);
  CHECK(fx.sink->stats().connects == 2);
  CHECK(fx.sink->stats().resent_bytes > 0);
}

TEST_CASE("tls stream sink: a wrong CA is refused with its reason and nothing leaves the pipe",
          "[ktls]") {
  Fixture fx;
  fx.cfg.tls->ca_file = fx.certs.path("other-ca.pem");
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  REQUIRE(fx.start(server.address()).isOk());
  fx.content = lines(0, 100);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    server.pump();
    return fx.sink->handshakeFailures() >= 2;
  }));
  CHECK(fx.sink->state() != SinkState::kConnected);
  CHECK(fx.listener.deliveredOf(1) == 0);
  CHECK(server.data.empty());
  CHECK(fx.listener.rewinds.empty());
  CHECK_THAT(fx.sink->lastHandshakeFailure(), Catch::Contains("certificate verify failed"));
}

TEST_CASE(
    "tls stream sink: mutual TLS is accepted with the agent's certificate, and refused "
    "without one, nothing counted as delivered",
    "[ktls]") {
  {
    Fixture fx;
    fx.cfg.tls->cert_file = fx.certs.path("client.pem");
    fx.cfg.tls->key_file = fx.certs.path("client.key");
    TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"),
                         fx.certs.path("ca.pem"));
    REQUIRE(fx.start(server.address()).isOk());
    fx.content = lines(0, 500);
    fx.feedFrom(0);
    REQUIRE(fx.deliverAll(server));
    REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
    CHECK(server.data == fx.content);
    CHECK(server.client_cert);
  }
  Fixture fx;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"),
                       fx.certs.path("ca.pem"));
  REQUIRE(fx.start(server.address()).isOk());
  fx.content = lines(0, 100);
  fx.feedFrom(0);
  REQUIRE(fx.loop.waitFor([&] {
    fx.routerStep();
    server.pump();
    return server.handshake_failures >= 2 && fx.sink->handshakeFailures() >= 2;
  }));
  fx.loop.runFor(300);
  // TLS 1.3: our side of the handshake completed, but nothing counts before the server agreed.
  CHECK(fx.listener.deliveredOf(1) == 0);
  CHECK(server.data.empty());
  CHECK(server.handshakes == 0);
  CHECK(fx.gauge("logsplice_tls_handshake_failures_total") >= 2);
}

TEST_CASE(
    "tls stream sink: require is refused at start where the kernel has no tls ULP, saying why",
    "[ktls]") {
  Fixture fx;
  fx.cfg.tls->ktls = config::KtlsMode::kRequire;
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  sys::Error err = fx.start(server.address());
  if (sys::tcpUlpAvailable("tls")) {
    CHECK(err.isOk());
  } else {
    REQUIRE_FALSE(err.isOk());
    CHECK_THAT(err.toString(), Catch::Contains("require") && Catch::Contains("tcp_available_ulp"));
  }
}

// Needs a kernel with kTLS (CONFIG_TLS, `tls` in /proc/sys/net/ipv4/tcp_available_ulp).
TEST_CASE(
    "ktls sink require [runs only where the kernel has kTLS, skipped with the reason]: "
    "the kernel encrypts, bytes_copied stays 0",
    "[ktls][needs-kernel-tls]") {
  if (!sys::tcpUlpAvailable("tls")) {
    const char* why =
        "SKIPPED: this kernel has no kTLS ('tls' is not in "
        "/proc/sys/net/ipv4/tcp_available_ulp, built without CONFIG_TLS)";
    std::cout << "tls_stream_sink_test: " << why << "\n";
    SUCCEED(why);
    return;
  }
  Fixture fx;
  fx.cfg.tls->ktls = config::KtlsMode::kRequire;
  // AES-GCM: what the kernel encrypts on every version that has kTLS.
  fx.cfg.tls->ciphersuites = "TLS_AES_128_GCM_SHA256";
  TlsTestServer server(fx.certs.path("server.pem"), fx.certs.path("server.key"));
  REQUIRE(fx.start(server.address()).isOk());
  fx.content = lines(0, 20000);
  fx.feedFrom(0);
  REQUIRE(fx.deliverAll(server, 20000));
  REQUIRE(fx.loop.waitFor([&] { return server.pump().size() >= fx.content.size(); }));
  CHECK(server.data == fx.content);
  CHECK(fx.sink->ktlsInUse());
  CHECK(fx.sink->stats().bytes_copied == 0);
  CHECK(fx.sink->stats().bytes_sent == fx.content.size());
  CHECK(fx.gauge("logsplice_tls_ktls") == 1);
}
