#include "agent/status/status_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "agent/status/prom_metric_writer.h"
#include "sys/unique_fd.h"

using logsplice::agent::parseHostPort;
using logsplice::agent::StatusServer;
namespace sys = logsplice::sys;
using logsplice::agent::StatusServerOptions;
using logsplice::agent::PromMetricWriter;
using logsplice::sys::UniqueFd;

namespace {

using namespace std::chrono_literals;

// A loop with a 5 ms ticker so that UV_RUN_ONCE returns regularly while a client thread works.
class TestLoop {
 public:
  TestLoop() {
    REQUIRE(uv_loop_init(&loop_) == 0);
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
  }
  ~TestLoop() {
    if (!closed_) close();
  }
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until pred() holds; false on timeout.
  template <class Pred>
  bool runUntil(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }
  template <class T>
  T await(std::future<T>& f, std::chrono::milliseconds timeout = 5000ms) {
    REQUIRE(runUntil([&] { return f.wait_for(0s) == std::future_status::ready; }, timeout));
    return f.get();
  }

  // Closes the ticker, drains the loop and returns uv_loop_close()'s result.
  int close() {
    closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    return uv_loop_close(&loop_);
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
  bool closed_ = false;
};

UniqueFd connectTo(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  return fd;
}

// Reads until EOF (or error/timeout); returns what arrived.
std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void sendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early (oversized request)
    sent += static_cast<size_t>(n);
  }
}

// Sends `request` from a thread and returns the whole response.
std::future<std::string> exchange(uint16_t port, std::string request) {
  return std::async(std::launch::async, [port, request = std::move(request)] {
    UniqueFd fd = connectTo(port);
    sendAll(fd.get(), request);
    return readAll(fd.get());
  });
}

int statusOf(const std::string& response) {
  if (response.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

std::string bodyOf(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : response.substr(p + 4);
}

std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n";
}

StatusServerOptions fastOptions() {
  StatusServerOptions o;
  o.request_timeout_ms = 300;
  o.response_timeout_ms = 1000;
  o.linger_ms = 500;
  return o;
}

// A server on 127.0.0.1:0 with switchable health, closed and checked at the end of each test.
struct Fixture {
  TestLoop loop;
  std::string metrics_body = "# TYPE up gauge\nup 1\n";
  StatusServer::Health health{true, ""};
  StatusServer server{loop.get(), sys::HostPort{"127.0.0.1", 0}, [this] { return metrics_body; },
                      [this] { return health; }, fastOptions()};

  Fixture() {
    auto err = server.start();
    REQUIRE_FALSE(err);
    REQUIRE(server.port() != 0);
  }
  std::string request(const std::string& raw) {
    auto f = exchange(server.port(), raw);
    return loop.await(f);
  }
  void closeAndCheck() {
    bool closed = false;
    server.close([&] { closed = true; });
    REQUIRE(loop.runUntil([&] { return closed; }));
    REQUIRE(loop.close() == 0);
  }
};

}  // namespace

TEST_CASE("status server serves /metrics with the Prometheus content type", "[status_server]") {
  Fixture fx;
  std::string resp = fx.request(get("/metrics"));
  CHECK(statusOf(resp) == 200);
  CHECK(resp.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(resp.find("Content-Length: " + std::to_string(fx.metrics_body.size()) + "\r\n") !=
        std::string::npos);
  CHECK(resp.find("Connection: close") != std::string::npos);
  CHECK(bodyOf(resp) == fx.metrics_body);

  // A query string is ignored; HTTP/1.0 and bare-LF line ends are accepted.
  CHECK(bodyOf(fx.request(get("/metrics?name[]=up"))) == fx.metrics_body);
  CHECK(statusOf(fx.request("GET /metrics HTTP/1.0\n\n")) == 200);

  // HEAD: same headers, no body.
  std::string head = fx.request("HEAD /metrics HTTP/1.1\r\n\r\n");
  CHECK(statusOf(head) == 200);
  CHECK(bodyOf(head).empty());
  fx.closeAndCheck();
}

TEST_CASE("status server /health reports 200 or 503 with the reason", "[status_server]") {
  Fixture fx;
  std::string ok = fx.request(get("/health"));
  CHECK(statusOf(ok) == 200);
  CHECK(bodyOf(ok) == "ok\n");

  fx.health = {false, "sink central: backoff"};
  std::string bad = fx.request(get("/health"));
  CHECK(statusOf(bad) == 503);
  CHECK(bodyOf(bad) == "sink central: backoff\n");
  fx.closeAndCheck();
}

TEST_CASE("status server answers 404 and 405", "[status_server]") {
  Fixture fx;
  CHECK(statusOf(fx.request(get("/"))) == 404);
  CHECK(statusOf(fx.request(get("/metricsx"))) == 404);
  std::string post = fx.request("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(statusOf(post) == 405);
  CHECK(post.find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(statusOf(fx.request("DELETE /health HTTP/1.1\r\n\r\n")) == 405);
  fx.closeAndCheck();
}

TEST_CASE("status server rejects malformed requests with 400", "[status_server]") {
  Fixture fx;
  const char* bad[] = {
      "HELLO\r\n\r\n",
      "GET /metrics\r\n\r\n",
      "GET /metrics HTTP/2.0\r\n\r\n",
      "GET  /metrics HTTP/1.1\r\n\r\n",
      "GET metrics HTTP/1.1\r\n\r\n",
      "G(T /metrics HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nA: b\x01\r\n\r\n",
  };
  for (const char* req : bad) {
    INFO(req);
    CHECK(statusOf(fx.request(req)) == 400);
  }
  // Garbage is refused as soon as its first line is complete, without waiting for more.
  auto start = std::chrono::steady_clock::now();
  CHECK(statusOf(fx.request(std::string("\x16\x03\x01 binary\n"))) == 400);
  CHECK(std::chrono::steady_clock::now() - start < 250ms);
  fx.closeAndCheck();
}

TEST_CASE("status server bounds the request head", "[status_server]") {
  Fixture fx;
  std::string huge = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n";
  std::string resp = fx.request(huge);
  CHECK(statusOf(resp) == 431);

  // Just under the limit is fine.
  std::string req = "GET /metrics HTTP/1.1\r\nX-Big: ";
  req += std::string(8192 - req.size() - 4, 'b') + "\r\n\r\n";
  REQUIRE(req.size() == 8192);
  CHECK(statusOf(fx.request(req)) == 200);
  fx.closeAndCheck();
}

TEST_CASE("a slow client neither blocks others nor stays forever", "[status_server]") {
  Fixture fx;
  // The slow client sends half a request line and then nothing.
  auto slow = std::async(std::launch::async, [port = fx.server.port()] {
    UniqueFd fd = connectTo(port);
    sendAll(fd.get(), "GET /met");
    return readAll(fd.get());
  });
  REQUIRE(fx.loop.runUntil([&] { return fx.server.connectionCount() == 1; }));

  auto start = std::chrono::steady_clock::now();
  CHECK(bodyOf(fx.request(get("/metrics"))) == fx.metrics_body);
  CHECK(std::chrono::steady_clock::now() - start < 250ms);  // well before the slow one times out

  // After request_timeout_ms the slow client gets 408 and the connection goes away.
  CHECK(statusOf(fx.loop.await(slow)) == 408);
  REQUIRE(fx.loop.runUntil([&] { return fx.server.connectionCount() == 0; }));

  // An idle connection that never sends a byte is closed without a response.
  auto idle = std::async(std::launch::async, [port = fx.server.port()] {
    UniqueFd fd = connectTo(port);
    return readAll(fd.get());
  });
  CHECK(fx.loop.await(idle).empty());
  fx.closeAndCheck();
}

TEST_CASE("status server caps concurrent connections", "[status_server]") {
  TestLoop loop;
  StatusServerOptions options = fastOptions();
  options.max_connections = 2;
  options.request_timeout_ms = 5000;
  StatusServer server(
      loop.get(), sys::HostPort{"127.0.0.1", 0}, [] { return std::string("m 1\n"); },
      [] { return StatusServer::Health{}; }, options);
  REQUIRE_FALSE(server.start());

  std::vector<UniqueFd> idle;
  idle.push_back(connectTo(server.port()));
  idle.push_back(connectTo(server.port()));
  REQUIRE(loop.runUntil([&] { return server.connectionCount() == 2; }));

  auto third = std::async(std::launch::async, [port = server.port()] {
    UniqueFd fd = connectTo(port);
    return readAll(fd.get());
  });
  std::string resp = loop.await(third);
  CHECK(statusOf(resp) == 503);
  CHECK(server.connectionCount() == 2);

  // Once a slot frees, requests are served again.
  idle.clear();
  REQUIRE(loop.runUntil([&] { return server.connectionCount() == 0; }));
  auto f = exchange(server.port(), get("/metrics"));
  CHECK(bodyOf(loop.await(f)) == "m 1\n");

  bool closed = false;
  server.close([&] { closed = true; });
  REQUIRE(loop.runUntil([&] { return closed; }));
  REQUIRE(loop.close() == 0);
}

namespace {

// Captures what the default logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> linesWith(const std::string& needle) {
    std::vector<std::string> found;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) found.push_back(line);
    }
    return found;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// The N of every "rejected N connections" summary line, added up.
uint64_t summedRejections(const std::vector<std::string>& lines) {
  uint64_t sum = 0;
  for (const auto& line : lines) {
    size_t at = line.find("rejected ") + 9;
    sum += std::stoull(line.substr(at, line.find(' ', at) - at));
  }
  return sum;
}

}  // namespace

TEST_CASE("rejected connections are logged once, then summed up per interval, and counted",
          "[status_server]") {
  LogCapture log;
  TestLoop loop;
  StatusServerOptions options = fastOptions();
  options.max_connections = 2;
  options.request_timeout_ms = 5000;
  options.reject_log_interval_ms = 300;
  StatusServer server(
      loop.get(), sys::HostPort{"127.0.0.1", 0}, [] { return std::string("m 1\n"); },
      [] { return StatusServer::Health{}; }, options);
  REQUIRE_FALSE(server.start());

  std::vector<UniqueFd> idle;
  idle.push_back(connectTo(server.port()));
  idle.push_back(connectTo(server.port()));
  REQUIRE(loop.runUntil([&] { return server.connectionCount() == 2; }));

  constexpr int kBurst = 40;
  auto start = std::chrono::steady_clock::now();
  auto burst = std::async(std::launch::async, [port = server.port()] {
    int rejected = 0;
    for (int i = 0; i < kBurst; ++i) {
      UniqueFd fd = connectTo(port);
      if (statusOf(readAll(fd.get())) == 503) ++rejected;
    }
    return rejected;
  });
  CHECK(loop.await(burst) == kBurst);
  CHECK(server.rejectedConnections() == kBurst);

  // The first rejection is logged at once; the rest only as summaries, one per interval at most.
  CHECK(log.linesWith("rejecting one").size() == 1);
  auto summed = [&] { return summedRejections(log.linesWith("connections in the last 300 ms")); };
  REQUIRE(loop.runUntil([&] { return summed() == kBurst - 1; }, 3000ms));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  auto summaries = log.linesWith("connections in the last 300 ms");
  CHECK(summaries.size() <= static_cast<size_t>(took.count() / 300 + 1));
  CHECK(summaries.size() < 5);
  CHECK_THAT(summaries.front(), Catch::Contains("over max_connections 2"));

  PromMetricWriter w;
  server.collectMetrics(w);
  CHECK_THAT(w.text(),
             Catch::Contains("# TYPE logsplice_status_rejected_connections_total counter\n"
                             "logsplice_status_rejected_connections_total 40\n"));

  // After a quiet interval the next rejection is logged at once again.
  auto quiet_until = std::chrono::steady_clock::now() + 700ms;
  REQUIRE(loop.runUntil([&] { return std::chrono::steady_clock::now() >= quiet_until; }, 2000ms));
  auto one = std::async(std::launch::async, [port = server.port()] {
    UniqueFd fd = connectTo(port);
    return statusOf(readAll(fd.get()));
  });
  CHECK(loop.await(one) == 503);
  CHECK(log.linesWith("rejecting one").size() == 2);
  CHECK(server.rejectedConnections() == kBurst + 1);

  idle.clear();
  bool closed = false;
  server.close([&] { closed = true; });
  REQUIRE(loop.runUntil([&] { return closed; }));
  REQUIRE(loop.close() == 0);
}

TEST_CASE("a throwing callback yields 500, not a crash", "[status_server]") {
  TestLoop loop;
  StatusServer server(
      loop.get(), sys::HostPort{"127.0.0.1", 0}, []() -> std::string { throw std::runtime_error("boom"); },
      []() -> StatusServer::Health { throw 42; }, fastOptions());
  REQUIRE_FALSE(server.start());
  auto m = exchange(server.port(), get("/metrics"));
  CHECK(statusOf(loop.await(m)) == 500);
  auto h = exchange(server.port(), get("/health"));
  CHECK(statusOf(loop.await(h)) == 500);
  bool closed = false;
  server.close([&] { closed = true; });
  REQUIRE(loop.runUntil([&] { return closed; }));
  REQUIRE(loop.close() == 0);
}

TEST_CASE("close() with open connections lets the loop close", "[status_server]") {
  Fixture fx;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connectTo(fx.server.port()));
  sendAll(clients[0].get(), "GET /metr");
  REQUIRE(fx.loop.runUntil([&] { return fx.server.connectionCount() == 3; }));
  fx.closeAndCheck();
  // The clients see EOF (or a reset): the server is gone.
  for (auto& c : clients) CHECK(readAll(c.get()).empty());
}

TEST_CASE("destroying a server without close() still frees its handles", "[status_server]") {
  TestLoop loop;
  {
    StatusServer server(
        loop.get(), sys::HostPort{"127.0.0.1", 0}, [] { return std::string(); },
        [] { return StatusServer::Health{}; });
    REQUIRE_FALSE(server.start());
    UniqueFd c = connectTo(server.port());
    REQUIRE(loop.runUntil([&] { return server.connectionCount() == 1; }));
  }
  REQUIRE(loop.close() == 0);
}

TEST_CASE("destroying a server that rejected connections frees its summary timer",
          "[status_server]") {
  TestLoop loop;
  {
    StatusServerOptions options = fastOptions();
    options.max_connections = 1;
    StatusServer server(
        loop.get(), sys::HostPort{"127.0.0.1", 0}, [] { return std::string(); },
        [] { return StatusServer::Health{}; }, options);
    REQUIRE_FALSE(server.start());
    UniqueFd first = connectTo(server.port());
    UniqueFd second = connectTo(server.port());
    REQUIRE(loop.runUntil([&] { return server.rejectedConnections() == 1; }));
  }
  REQUIRE(loop.close() == 0);
}

TEST_CASE("start() errors name the address", "[status_server]") {
  TestLoop loop;
  StatusServer first(loop.get(), sys::HostPort{"127.0.0.1", 0}, nullptr, nullptr);
  REQUIRE_FALSE(first.start());
  std::string taken = "127.0.0.1:" + std::to_string(first.port());

  StatusServer second(loop.get(), sys::HostPort{"127.0.0.1", first.port()}, nullptr, nullptr);
  auto err = second.start();
  REQUIRE(err);
  CHECK(err.sysErrno() == EADDRINUSE);
  CHECK(err.toString().find(taken) != std::string::npos);
  CHECK(second.port() == 0);

  // Config parsing checks the form; the server itself listens only on literal addresses.
  StatusServer bad(loop.get(), sys::HostPort{"collector.example.com", 0}, nullptr, nullptr);
  auto bad_err = bad.start();
  REQUIRE(bad_err);
  CHECK(bad_err.toString().find("IPv4 address, [IPv6] or localhost") != std::string::npos);

  int pending = 3;
  for (StatusServer* s : {&first, &second, &bad}) s->close([&] { --pending; });
  REQUIRE(loop.runUntil([&] { return pending == 0; }));
  REQUIRE(loop.close() == 0);
}

TEST_CASE("parseHostPort accepts IPv4, [IPv6] and localhost", "[status_server]") {
  auto v4 = parseHostPort("127.0.0.1:9880");
  REQUIRE(v4.ok());
  CHECK(v4->ss_family == AF_INET);
  CHECK(ntohs(reinterpret_cast<sockaddr_in*>(&*v4)->sin_port) == 9880);
  auto v6 = parseHostPort("[::1]:0");
  REQUIRE(v6.ok());
  CHECK(v6->ss_family == AF_INET6);
  CHECK(parseHostPort("localhost:1").ok());
  for (const char* bad : {"", ":9880", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:80x", "example.com:80", "[::1:80", "::1:80"}) {
    INFO(bad);
    CHECK_FALSE(parseHostPort(bad).ok());
  }
}
