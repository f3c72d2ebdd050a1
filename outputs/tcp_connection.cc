#include "outputs/tcp_connection.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>

#include <cstring>
#include <memory>

#include "sys/assert.h"

namespace logsplice::outputs {
namespace {

constexpr uint64_t kAckPollMs = 100;
// A connection must stay up this long before the backoff starts again from `initial`. A
// collector that accepts and drops connections at once (overloaded, flapping, a proxy with no
// backend) is then retried on the grown backoff instead of every `initial`; one that served us
// for a while and then restarted is retried at once.
constexpr uint64_t kStableConnectionMs = 5000;

TcpConnection* self(void* data) {
  return static_cast<TcpConnection*>(data);
}

socklen_t socketAddressLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

TcpConnection::TcpConnection(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                             Handler& handler)
    : loop_(loop),
      name_(std::move(name)),
      cfg_(cfg),
      handler_(handler),
      backoff_(cfg.backoff.initial, cfg.backoff.max) {}

TcpConnection::~TcpConnection() { stop(); }

const sys::HostPort& TcpConnection::currentAddress() const {
  return cfg_.addresses[addr_index_ % cfg_.addresses.size()];
}

std::string TcpConnection::currentPeer() const {
  return peer_.empty() ? currentAddress().toString() : peer_;
}

sys::Error TcpConnection::start() {
  if (cfg_.addresses.empty()) return sys::Error::invalidConfig("output '" + name_ + "': no address");
  if (!timer_) LS_CHECK_UV(timer_.init(uv_timer_init, loop_, this));
  if (!ack_timer_) {
    LS_CHECK_UV(ack_timer_.init(uv_timer_init, loop_, this));
    uv_timer_start(
        ack_timer_.get(),
        [](uv_timer_t* t) {
          if (t->data && self(t->data)->state_ == State::kConnected) {
            self(t->data)->handler_.connectionAckTick();
          }
        },
        kAckPollMs, kAckPollMs);
  }
  resolveCurrent();
  return sys::Error::ok();
}

void TcpConnection::resolveCurrent() {
  state_ = State::kConnecting;
  uint64_t seq = ++resolve_seq_;
  if (resolver_) {
    resolver_(currentAddress(), [this, seq](int status, std::vector<sockaddr_storage> addrs) {
      if (seq == resolve_seq_ && state_ == State::kConnecting) onResolved(status, std::move(addrs));
    });
    return;
  }
  const std::string& host = currentAddress().host;
  const std::string port = std::to_string(currentAddress().port);
  resolving_ = new uv_getaddrinfo_t{};
  resolving_->data = this;
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_, resolving_,
      [](uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
        std::unique_ptr<uv_getaddrinfo_t> owned(req);
        std::vector<sockaddr_storage> addrs;
        for (addrinfo* ai = res; status == 0 && ai; ai = ai->ai_next) {
          if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
          sockaddr_storage ss{};
          std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
          addrs.push_back(ss);
        }
        uv_freeaddrinfo(res);
        if (auto* c = self(req->data)) {
          c->resolving_ = nullptr;
          c->onResolved(status, std::move(addrs));
        }
      },
      host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete resolving_;
    resolving_ = nullptr;
    fail(std::string("resolve: ") + uv_strerror(rc), 0);
  }
}

void TcpConnection::onResolved(int status, std::vector<sockaddr_storage> addrs) {
  if (status != 0 || addrs.empty()) {
    peer_.clear();
    fail(std::string("cannot resolve ") + currentAddress().toString() + ": " +
             (status != 0 ? uv_strerror(status) : "no address"),
         0);
    return;
  }
  candidates_ = std::move(addrs);
  candidate_ = 0;
  tryNextCandidate();
}

void TcpConnection::tryNextCandidate() {
  state_ = State::kConnecting;
  const sockaddr_storage& ss = candidates_[candidate_++];
  peer_ = sys::socketAddressText(ss);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket", errno);
    return;
  }
  sock_.reset(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), socketAddressLen(ss)) != 0 &&
      errno != EINPROGRESS) {
    fail("connect", errno);
    return;
  }
  if (int rc = poll_.init(uv_poll_init_socket, loop_, this, fd); rc != 0) {
    fail(std::string("uv_poll_init_socket: ") + uv_strerror(rc), 0);
    return;
  }
  poll_events_ = 0;
  updatePoll();
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data && self(t->data)->state_ == State::kConnecting) {
          self(t->data)->fail("connect timed out", ETIMEDOUT);
        }
      },
      static_cast<uint64_t>(cfg_.connect_timeout.count()), 0);
}

void TcpConnection::wantWritable(bool on) {
  want_writable_ = on;
  updatePoll();
}

void TcpConnection::updatePoll() {
  if (!poll_) return;
  int want = 0;
  if (state_ == State::kConnecting) {
    want = UV_WRITABLE;
  } else if (state_ == State::kConnected) {
    want = UV_READABLE | UV_DISCONNECT | (want_writable_ ? UV_WRITABLE : 0);
  }
  if (want == poll_events_) return;
  poll_events_ = want;
  if (want == 0) {
    uv_poll_stop(poll_.get());
    return;
  }
  uv_poll_start(poll_.get(), want, [](uv_poll_t* p, int status, int events) {
    if (p->data) self(p->data)->onPoll(status, events);
  });
}

void TcpConnection::onPoll(int status, int events) {
  if (status < 0 && state_ == State::kConnecting) {
    // libuv reports POLLERR as UV_EBADF: the socket's own error says what happened.
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(sock_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail("connect", err);
      return;
    }
  }
  if (status < 0) {
    fail(std::string("poll: ") + uv_strerror(status), 0);
    return;
  }
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(sock_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail("connect", err);
      return;
    }
    onConnected();
    return;
  }
  if (state_ != State::kConnected) return;
  if ((events & (UV_READABLE | UV_DISCONNECT)) && handler_.connectionReadable()) {
    if (state_ != State::kConnected) return;  // the handler gave up on the connection
  } else if (events & (UV_READABLE | UV_DISCONNECT)) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(sock_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        handler_.connectionData(buf, static_cast<size_t>(n));
        if (state_ != State::kConnected) return;  // the handler gave up on the connection
        continue;
      }
      if (n == 0) {
        fail("peer closed the connection", 0);
        return;
      }
      if (errno == EAGAIN || errno == EINTR) break;
      fail("recv", errno);
      return;
    }
  }
  if (events & UV_WRITABLE) handler_.connectionWritable();
}

void TcpConnection::onConnected() {
  uv_timer_stop(timer_.get());
  int fd = sock_.get();
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int idle_s = static_cast<int>(std::max<int64_t>(1, cfg_.keepalive.count() / 1000));
  int intvl_s = std::max(1, idle_s / 3);
  int cnt = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  // A peer that stops acknowledging must not pin our pages for ever.
  unsigned user_timeout_ms = static_cast<unsigned>(cfg_.keepalive.count() * 2);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  state_ = State::kConnected;
  candidates_.clear();
  connected_at_ = uv_now(loop_);
  if (outage_logged_) {
    spdlog::info("output '{}': connected to {} again", name_, peer_);
    outage_logged_ = false;
  } else {
    spdlog::info("output '{}': connected to {}", name_, peer_);
  }
  updatePoll();
  handler_.connectionUp();
}

std::optional<uint64_t> TcpConnection::unacknowledged() const {
  if (state_ != State::kConnected || !sock_) return std::nullopt;
  int outq = 0;
  if (::ioctl(sock_.get(), SIOCOUTQ, &outq) != 0) return std::nullopt;
  struct tcp_info info {};
  socklen_t len = sizeof info;
  if (::getsockopt(sock_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  // Read after SIOCOUTQ: if the connection is still established now, the queue length was
  // read while it was, so it was not purged by a reset.
  if (info.tcpi_state != TCP_ESTABLISHED) return std::nullopt;
  return static_cast<uint64_t>(std::max(outq, 0));
}

void TcpConnection::fail(const std::string& why, int err) {
  if (state_ == State::kStopped) return;
  std::string detail = err ? why + ": " + std::strerror(err) : why;
  bool was_connected = state_ == State::kConnected;
  if (was_connected && uv_now(loop_) - connected_at_ >= kStableConnectionMs) backoff_.reset();
  if (!outage_logged_) {
    spdlog::warn("output '{}': {} ({}); retrying with backoff, the file is the buffer", name_,
                 detail, currentPeer());
    outage_logged_ = true;
  } else {
    spdlog::debug("output '{}': {} ({})", name_, detail, currentPeer());
  }
  closeSocket();
  state_ = State::kBackoff;
  if (was_connected) candidates_.clear();  // a lost connection moves on to the next address
  if (candidate_ < candidates_.size()) {
    // The name resolved to more addresses: try the next one now.
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          if (t->data) self(t->data)->tryNextCandidate();
        },
        0, 0);
  } else {
    nextAddress();
  }
  handler_.connectionDown(was_connected);
}

void TcpConnection::nextAddress() {
  candidates_.clear();
  candidate_ = 0;
  ++addr_index_;
  // Back off only after a whole round of addresses failed.
  uint64_t delay = 0;
  if (addr_index_ % cfg_.addresses.size() == 0) {
    delay = static_cast<uint64_t>(backoff_.next().count());
  }
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->resolveCurrent();
      },
      delay, 0);
}

void TcpConnection::closeSocket() {
  poll_.close();  // uv_close stops the poll at once, so the fd can close now
  poll_events_ = 0;
  want_writable_ = false;
  sock_.reset();
  if (timer_) uv_timer_stop(timer_.get());
}

void TcpConnection::stop() {
  closeSocket();
  if (resolving_) {
    // Let a pending resolution finish on its own: its callback sees no owner.
    resolving_->data = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
    resolving_ = nullptr;
  }
  ++resolve_seq_;
  candidates_.clear();
  candidate_ = 0;
  state_ = State::kStopped;
}

void TcpConnection::close(std::function<void()> on_closed) {
  stop();
  // Three handles close asynchronously; call back after the last one.
  auto pending = std::make_shared<int>(3);
  auto done = [pending, cb = std::move(on_closed)] {
    if (--*pending == 0 && cb) cb();
  };
  poll_.close(done);
  timer_.close(done);
  ack_timer_.close(done);
}

}  // namespace logsplice::outputs
