#include "agent/status/status_server.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <cassert>
#include <charconv>
#include <cstring>
#include <exception>
#include <utility>

namespace logsplice::agent {

namespace {

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextContentType = "text/plain; charset=utf-8";

// RFC 9110 token characters (methods and header names).
bool isTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool isTokenString(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isTchar(c)) return false;
  }
  return true;
}

// Visible ASCII or obs-text; no spaces or controls (a request target).
bool isTargetString(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

// A header value: HTAB, SP, visible ASCII, obs-text.
bool isFieldValue(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
  }
  return "Unknown";
}

std::string buildResponse(int status, std::string_view content_type, std::string_view body,
                          bool head_only = false, std::string_view extra_headers = {}) {
  std::string out;
  out.reserve(160 + (head_only ? 0 : body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

// "10 s", "250 ms".
std::string intervalText(uint64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

std::string_view stripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

struct RequestLine {
  std::string_view method;
  std::string_view path;  // without the query string
};

// Parses "METHOD SP target SP HTTP/1.x". Returns false when malformed.
bool parseRequestLine(std::string_view line, RequestLine& out) {
  line = stripCr(line);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!isTokenString(method) || !isTargetString(target)) return false;
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
      version[7] > '9') {
    return false;
  }
  // Absolute-form ("http://host/metrics") must be accepted by servers (RFC 9112 3.2.2).
  if (target.substr(0, 7) == "http://") {
    size_t slash = target.find('/', 7);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.front() != '/') return false;
  target = target.substr(0, target.find('?'));
  out.method = method;
  out.path = target;
  return true;
}

// Validates the header lines that follow the request line (without the final empty line).
bool validHeaders(std::string_view headers) {
  while (!headers.empty()) {
    size_t nl = headers.find('\n');
    std::string_view line = stripCr(headers.substr(0, nl));
    headers.remove_prefix(nl == std::string_view::npos ? headers.size() : nl + 1);
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') return false;  // obs-fold is rejected
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !isTokenString(line.substr(0, colon))) return false;
    if (!isFieldValue(line.substr(colon + 1))) return false;
  }
  return true;
}

// Position just past the empty line that ends a request head, or npos. `from` is where the new
// bytes start: only a '\n' at or after it can complete the head.
size_t findHeadEnd(std::string_view data, size_t from) {
  for (size_t i = std::max<size_t>(from, 1); i < data.size(); ++i) {
    if (data[i] != '\n') continue;
    if (data[i - 1] == '\n' || (data[i - 1] == '\r' && i >= 2 && data[i - 2] == '\n')) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

// One accepted connection: reads a request head into a fixed buffer, writes one response,
// half-closes and drains the peer until EOF (so unread request bytes do not turn our close
// into a RST that could destroy the response), then closes. Owns its two handles and frees
// itself once both close callbacks have run.
class StatusServer::Connection {
 public:
  enum class State { kReading, kWriting, kLingering, kClosing };

  Connection(StatusServer* server, size_t max_request_bytes)
      : server_(server), buf_(max_request_bytes, '\0') {
    tcp_.data = this;
    timer_.data = this;
    write_req_.data = this;
    shutdown_req_.data = this;
  }

  StatusServer* server_;  // null once the server is destroyed
  std::list<Connection*>::iterator self_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  int open_handles_ = 0;

  void begin() {
    int rc = uv_read_start(stream(), &Connection::onAlloc, &Connection::onRead);
    if (rc < 0) return close();
    uv_timer_start(&timer_, &Connection::onTimer, server_->options_.request_timeout_ms, 0);
  }

  // Answers 503 without reading the request, for connections beyond the limit.
  void reject() {
    std::string resp = buildResponse(503, kTextContentType, "too many connections\n");
    uv_buf_t b = uv_buf_init(resp.data(), static_cast<unsigned>(resp.size()));
    (void)uv_try_write(stream(), &b, 1);  // best effort; the peer is told or sees a close
    close();
  }

  void close() {
    if (state_ == State::kClosing) return;
    state_ = State::kClosing;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::onClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::onClosed);
  }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  static void onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(handle->data);
    if (self->state_ == State::kReading) {
      *buf = uv_buf_init(self->buf_.data() + self->used_,
                         static_cast<unsigned>(self->buf_.size() - self->used_));
    } else {  // lingering: bytes are discarded
      *buf = uv_buf_init(self->buf_.data(), static_cast<unsigned>(self->buf_.size()));
    }
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
    auto* self = static_cast<Connection*>(stream->data);
    if (self->state_ == State::kClosing || nread == 0) return;
    if (nread < 0) return self->close();          // EOF or error: nothing more to say
    if (self->state_ != State::kReading) return;  // lingering: discard
    size_t from = self->used_;
    self->used_ += static_cast<size_t>(nread);
    std::string_view data(self->buf_.data(), self->used_);
    size_t end = findHeadEnd(data, from);
    if (end != std::string_view::npos) return self->handleRequest(data.substr(0, end));
    if (!self->line_checked_) {
      size_t nl = data.find('\n');
      if (nl != std::string_view::npos) {
        // Fail fast on garbage (a TLS hello, a stray protocol) instead of waiting for more.
        RequestLine line;
        if (!parseRequestLine(data.substr(0, nl), line)) {
          return self->respond(buildResponse(400, kTextContentType, "bad request line\n"));
        }
        self->line_checked_ = true;
      }
    }
    if (self->used_ == self->buf_.size()) {
      self->respond(buildResponse(431, kTextContentType, "request head too large\n"));
    }
  }

  void handleRequest(std::string_view head) {
    size_t nl = head.find('\n');
    RequestLine line;
    if (!parseRequestLine(head.substr(0, nl), line) || !validHeaders(head.substr(nl + 1))) {
      return respond(buildResponse(400, kTextContentType, "bad request\n"));
    }
    bool head_only = line.method == "HEAD";
    bool get_like = line.method == "GET" || head_only;
    spdlog::debug("status: {} {}", line.method, line.path);
    if (line.path != "/metrics" && line.path != "/health") {
      return respond(
          buildResponse(404, kTextContentType, "not found: try /metrics or /health\n", head_only));
    }
    if (!get_like) {
      return respond(buildResponse(405, kTextContentType, "method not allowed\n", false,
                                   "Allow: GET, HEAD\r\n"));
    }
    // The callbacks belong to the agent; an exception must not unwind through libuv's C frames.
    try {
      if (line.path == "/metrics") {
        std::string body = server_->metrics_ ? server_->metrics_() : std::string();
        return respond(buildResponse(200, kMetricsContentType, body, head_only));
      }
      Health health = server_->health_ ? server_->health_() : Health{};
      if (health.ok) return respond(buildResponse(200, kTextContentType, "ok\n", head_only));
      std::string reason = health.reason.empty() ? "unhealthy\n" : health.reason;
      if (reason.back() != '\n') reason += '\n';
      return respond(buildResponse(503, kTextContentType, reason, head_only));
    } catch (const std::exception& e) {
      spdlog::error("status: {} failed: {}", line.path, e.what());
      return respond(buildResponse(500, kTextContentType, "internal error\n", head_only));
    } catch (...) {
      spdlog::error("status: {} failed with an unknown exception", line.path);
      return respond(buildResponse(500, kTextContentType, "internal error\n", head_only));
    }
  }

  void respond(std::string response) {
    uv_read_stop(stream());
    state_ = State::kWriting;
    response_ = std::move(response);
    uv_timer_start(&timer_, &Connection::onTimer, server_->options_.response_timeout_ms, 0);
    uv_buf_t b = uv_buf_init(response_.data(), static_cast<unsigned>(response_.size()));
    if (uv_write(&write_req_, stream(), &b, 1, &Connection::onWrite) < 0) close();
  }

  static void onWrite(uv_write_t* req, int status) {
    auto* self = static_cast<Connection*>(req->data);
    if (self->state_ == State::kClosing) return;  // cancelled by close()
    if (status < 0) return self->close();
    std::string().swap(self->response_);  // release the body now
    if (uv_shutdown(&self->shutdown_req_, self->stream(), &Connection::onShutdown) < 0) {
      self->close();
    }
  }

  static void onShutdown(uv_shutdown_t* req, int status) {
    auto* self = static_cast<Connection*>(req->data);
    if (self->state_ == State::kClosing) return;
    if (status < 0) return self->close();
    self->state_ = State::kLingering;
    uv_timer_start(&self->timer_, &Connection::onTimer, self->server_->options_.linger_ms, 0);
    if (uv_read_start(self->stream(), &Connection::onAlloc, &Connection::onRead) < 0) {
      self->close();
    }
  }

  static void onTimer(uv_timer_t* timer) {
    auto* self = static_cast<Connection*>(timer->data);
    if (self->state_ == State::kReading && self->used_ > 0) {
      return self->respond(buildResponse(408, kTextContentType, "request timeout\n"));
    }
    self->close();  // idle connection, stalled reader, or linger over
  }

  static void onClosed(uv_handle_t* handle) {
    auto* self = static_cast<Connection*>(handle->data);
    if (--self->open_handles_ > 0) return;
    if (self->server_ != nullptr) self->server_->connectionClosed(self);
    delete self;
  }

  State state_ = State::kReading;
  std::string buf_;  // fixed size: max_request_bytes
  size_t used_ = 0;
  bool line_checked_ = false;
  std::string response_;
  uv_write_t write_req_;
  uv_shutdown_t shutdown_req_;
};

StatusServer::StatusServer(uv_loop_t* loop, sys::HostPort listen, MetricsFn metrics,
                           HealthFn health, StatusServerOptions options)
    : loop_(loop),
      listen_address_(std::move(listen)),
      listen_(listen_address_.toString()),
      metrics_(std::move(metrics)),
      health_(std::move(health)),
      options_(options) {}

StatusServer::~StatusServer() {
  for (Connection* conn : connections_) {
    conn->server_ = nullptr;
    conn->close();
  }
  connections_.clear();
  if (reject_timer_ != nullptr) {
    reject_timer_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(reject_timer_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(reject_timer_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    }
  }
  if (listener_ != nullptr) {
    listener_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(listener_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(listener_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
  }
}

sys::Error StatusServer::start() {
  assert(listener_ == nullptr && "start() is called once");
  auto addr = sys::numericAddress(listen_address_);
  if (!addr) return addr.error();

  listener_ = new uv_tcp_t;
  int rc = uv_tcp_init(loop_, listener_);
  if (rc < 0) {
    delete listener_;  // never initialised: nothing for libuv to close
    listener_ = nullptr;
    return sys::Error::fromErrno(-rc, "status server on " + listen_);
  }
  listener_->data = this;
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr.value());
  // libuv reports most bind errors (EADDRINUSE) from uv_listen; both name the address.
  rc = uv_tcp_bind(listener_, sa, 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 128, &StatusServer::onConnection);
  }
  if (rc < 0) return sys::Error::fromErrno(-rc, "listen on " + listen_);

  sockaddr_storage bound{};
  int len = sizeof bound;
  if (uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  spdlog::info("status server listening on {} (port {})", listen_, port_);
  return sys::Error::ok();
}

void StatusServer::onConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<StatusServer*>(listener->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("status server on {}: accept: {}", self->listen_, uv_strerror(status));
    return;
  }
  self->acceptOne();
}

void StatusServer::acceptOne() {
  auto* conn = new Connection(this, options_.max_request_bytes);
  if (int rc = uv_tcp_init(loop_, &conn->tcp_); rc < 0) {
    spdlog::warn("status server on {}: {}", listen_, uv_strerror(rc));
    delete conn;  // no handle was initialised
    return;
  }
  conn->open_handles_ = 1;
  uv_timer_init(loop_, &conn->timer_);  // cannot fail
  conn->open_handles_ = 2;
  conn->self_ = connections_.insert(connections_.end(), conn);

  if (int rc = uv_accept(reinterpret_cast<uv_stream_t*>(listener_),
                         reinterpret_cast<uv_stream_t*>(&conn->tcp_));
      rc < 0) {
    spdlog::warn("status server on {}: accept: {}", listen_, uv_strerror(rc));
    return conn->close();
  }
  if (connections_.size() > options_.max_connections) {
    noteRejected();
    return conn->reject();
  }
  conn->begin();
}

void StatusServer::noteRejected() {
  ++rejected_total_;
  if (reject_timer_ != nullptr && uv_is_active(reinterpret_cast<uv_handle_t*>(reject_timer_))) {
    ++rejected_unlogged_;  // summed up when the interval ends
    return;
  }
  spdlog::warn(
      "status server on {}: over {} connections (max_connections), rejecting one; further "
      "rejections are summed up every {}",
      listen_, options_.max_connections, intervalText(options_.reject_log_interval_ms));
  if (reject_timer_ == nullptr && !closing_) {
    reject_timer_ = new uv_timer_t;
    uv_timer_init(loop_, reject_timer_);  // cannot fail
    reject_timer_->data = this;
  }
  if (reject_timer_ != nullptr) {
    uv_timer_start(reject_timer_, &StatusServer::onRejectTimer, options_.reject_log_interval_ms,
                   0);
  }
}

void StatusServer::onRejectTimer(uv_timer_t* timer) {
  auto* self = static_cast<StatusServer*>(timer->data);
  // A quiet interval lets the timer stop: the next rejection is logged at once again.
  if (self == nullptr || self->rejected_unlogged_ == 0) return;
  self->logRejectSummary();
  uv_timer_start(timer, &StatusServer::onRejectTimer, self->options_.reject_log_interval_ms, 0);
}

void StatusServer::logRejectSummary() {
  spdlog::warn(
      "status server on {}: rejected {} connections in the last {} (over max_connections {})",
      listen_, rejected_unlogged_, intervalText(options_.reject_log_interval_ms),
      options_.max_connections);
  rejected_unlogged_ = 0;
}

void StatusServer::collectMetrics(sys::MetricWriter& w) const {
  w.counter("logsplice_status_rejected_connections_total",
            "Status connections refused with 503 over max_connections.", {},
            static_cast<double>(rejected_total_));
}

void StatusServer::connectionClosed(Connection* conn) {
  connections_.erase(conn->self_);
  finishCloseIfDone();
}

void StatusServer::close(std::function<void()> on_closed) {
  closing_ = true;
  on_closed_ = std::move(on_closed);
  if (listener_ != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(listener_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) {
      auto* self = static_cast<StatusServer*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      if (self == nullptr) return;
      self->listener_ = nullptr;
      self->finishCloseIfDone();
    });
  }
  for (Connection* conn : connections_) conn->close();  // removal happens in close callbacks
  if (rejected_unlogged_ > 0) logRejectSummary();  // nothing counted goes unsaid
  if (reject_timer_ != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(reject_timer_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(reject_timer_), [](uv_handle_t* h) {
      auto* self = static_cast<StatusServer*>(h->data);
      delete reinterpret_cast<uv_timer_t*>(h);
      if (self == nullptr) return;
      self->reject_timer_ = nullptr;
      self->finishCloseIfDone();
    });
  }
  finishCloseIfDone();
}

void StatusServer::finishCloseIfDone() {
  if (!closing_ || listener_ != nullptr || reject_timer_ != nullptr || !connections_.empty() ||
      !on_closed_) {
    return;
  }
  auto cb = std::move(on_closed_);
  on_closed_ = nullptr;
  cb();  // may destroy this
}

sys::Result<sockaddr_storage> parseHostPort(std::string_view host_port) {
  auto hp = sys::parseHostPort(host_port, /*allow_port_zero=*/true);
  if (!hp) return hp.error();
  return sys::numericAddress(hp.value());
}

}  // namespace logsplice::agent
