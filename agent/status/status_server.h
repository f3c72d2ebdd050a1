#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <string_view>

#include "sys/error.h"
#include "sys/metrics.h"
#include "sys/host_port.h"

namespace logsplice::agent {

// Limits of the status server; the defaults are what the agent uses, tests shrink the timeouts.
struct StatusServerOptions {
  uint64_t request_timeout_ms = 5000;    // request line + headers must arrive within this
  uint64_t response_timeout_ms = 10000;  // bound on writing a response to a slow reader
  uint64_t linger_ms = 2000;             // after our FIN, drain the peer's bytes this long
  size_t max_request_bytes = 8192;       // request line + headers; more gets 431
  size_t max_connections = 64;           // more get an immediate 503 and are closed
  // Rejections are logged once, then summed up in at most one line per interval (a scraper
  // storm or a port scan must not flood the agent's log).
  uint64_t reject_log_interval_ms = 10000;
};

// A minimal HTTP/1.1 responder for Prometheus scrapes and health checks, on the agent's libuv
// loop: `GET /metrics` (body from `metrics`), `GET /health` (200 "ok" or 503 with the reason
// from `health`), 404 for other paths, 405 for methods other than GET/HEAD, 400 for a malformed
// request, 431 for a request head over max_request_bytes, 408 when it does not arrive in time.
// One request per connection (`Connection: close`); request bodies are never read.
//
// Why hand-written: bookworm packages no llhttp library (only node-llhttp sources), and
// libmicrohttpd runs its own threads, while the callbacks here must run on the loop thread. We
// only need a request line and headers, which a bounded parser handles in ~100 lines.
//
// Memory per connection is bounded by max_request_bytes plus one response. Never blocks: reads
// and writes go through libuv, timers bound every phase of a connection.
//
// Loop thread only. Handles are freed only in their close callbacks: call close() and run the
// loop until `on_closed` fires before uv_loop_close(). Destroying the server without close()
// still closes its handles, which then free themselves when the loop runs.
class StatusServer {
 public:
  struct Health {
    bool ok = true;
    std::string reason;  // shown in the 503 body when !ok
  };
  using MetricsFn = std::function<std::string()>;
  using HealthFn = std::function<Health()>;

  StatusServer(uv_loop_t* loop, sys::HostPort listen, MetricsFn metrics, HealthFn health,
               StatusServerOptions options = StatusServerOptions());
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and listens on `listen` ("host:port"; port 0 picks a free port). The error names the
  // address (e.g. "listen on 127.0.0.1:9880: Address already in use"). Call once.
  sys::Error start();
  // The bound port (useful with port 0); 0 before a successful start().
  uint16_t port() const { return port_; }
  const std::string& listenAddress() const { return listen_; }
  size_t connectionCount() const { return connections_.size(); }
  // Connections turned away over max_connections since start.
  uint64_t rejectedConnections() const { return rejected_total_; }
  // logsplice_status_rejected_connections_total.
  void collectMetrics(sys::MetricWriter& w) const;
  // Closes the listener and every connection; `on_closed` runs once all handles are closed
  // (immediately if none were open). The server may be destroyed from `on_closed`.
  void close(std::function<void()> on_closed);

 private:
  class Connection;
  friend class Connection;

  static void onConnection(uv_stream_t* listener, int status);
  void acceptOne();
  void connectionClosed(Connection* conn);
  void finishCloseIfDone();
  void noteRejected();
  void logRejectSummary();
  static void onRejectTimer(uv_timer_t* timer);

  uv_loop_t* loop_;
  sys::HostPort listen_address_;
  std::string listen_;  // listen_address_ as text, for messages
  MetricsFn metrics_;
  HealthFn health_;
  StatusServerOptions options_;
  uv_tcp_t* listener_ = nullptr;  // owned; freed in its close callback
  uint16_t port_ = 0;
  std::list<Connection*> connections_;  // each frees itself after its handles close
  uv_timer_t* reject_timer_ = nullptr;  // owned; created at the first rejection
  uint64_t rejected_total_ = 0;
  uint64_t rejected_unlogged_ = 0;  // rejections since the last log line
  bool closing_ = false;
  std::function<void()> on_closed_;
};

// Parses "host:port" (sys::parseHostPort, port 0 allowed) where host is an IPv4 literal,
// "[IPv6]" or "localhost" (127.0.0.1), into a socket address: `logsplice status --endpoint`.
sys::Result<sockaddr_storage> parseHostPort(std::string_view host_port);

}  // namespace logsplice::agent
