#include "outputs/tcp_sink.h"

#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "sys/splice.h"
#include "sys/assert.h"

namespace logsplice::outputs {
namespace {

constexpr uint64_t kAckPollMs = 100;

TcpSink* self(void* data) {
  return static_cast<TcpSink*>(data);
}

}  // namespace

TcpSink::TcpSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                 SinkListener& listener, size_t pipe_bytes)
    : Sink(std::move(name), listener),
      loop_(loop),
      cfg_(cfg),
      pipe_bytes_(pipe_bytes),
      backoff_(cfg.backoff.initial, cfg.backoff.max) {}

TcpSink::~TcpSink() {
  if (resolving_) {
    resolving_->data = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
  }
}

const sys::HostPort& TcpSink::currentAddress() const {
  return cfg_.addresses[addr_index_ % cfg_.addresses.size()];
}

sys::Error TcpSink::start() {
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  LS_CHECK_UV(timer_.init(uv_timer_init, loop_, this));
  LS_CHECK_UV(ack_timer_.init(uv_timer_init, loop_, this));
  uv_timer_start(
      ack_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->updateAcks();
      },
      kAckPollMs, kAckPollMs);
  stopping_ = false;
  resolveNext();
  return sys::Error::ok();
}

void TcpSink::resolveNext() {
  state_ = SinkState::kConnecting;
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
        void* owner = req->data;
        delete req;
        if (owner) {
          self(owner)->resolving_ = nullptr;
          self(owner)->onResolved(status, res);
        }
        uv_freeaddrinfo(res);
      },
      host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete resolving_;
    resolving_ = nullptr;
    fail(std::string("resolve: ") + uv_strerror(rc), 0);
  }
}

void TcpSink::onResolved(int status, struct addrinfo* res) {
  if (stopping_) return;
  if (status != 0 || !res) {
    fail(std::string("cannot resolve: ") + uv_strerror(status), 0);
    return;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket", errno);
    return;
  }
  sock_.reset(fd);
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    fail("connect", errno);
    return;
  }
  if (int rc = poll_.init(uv_poll_init_socket, loop_, this, fd); rc != 0) {
    fail(std::string("uv_poll_init_socket: ") + uv_strerror(rc), 0);
    return;
  }
  poll_events_ = 0;
  updatePollEvents();
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data && self(t->data)->state_ == SinkState::kConnecting) {
          self(t->data)->fail("connect timed out", ETIMEDOUT);
        }
      },
      static_cast<uint64_t>(cfg_.connect_timeout.count()), 0);
}

void TcpSink::updatePollEvents() {
  if (!poll_) return;
  int want = 0;
  if (state_ == SinkState::kConnecting) {
    want = UV_WRITABLE;
  } else if (state_ == SinkState::kConnected) {
    want = UV_READABLE | UV_DISCONNECT | (drainable() > 0 ? UV_WRITABLE : 0);
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

void TcpSink::onPoll(int status, int events) {
  if (status < 0) {
    fail(std::string("poll: ") + uv_strerror(status), 0);
    return;
  }
  if (state_ == SinkState::kConnecting) {
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
  if (state_ != SinkState::kConnected) return;
  if (events & (UV_READABLE | UV_DISCONNECT)) {
    // Collectors send nothing; read to notice a close or reset early, and discard.
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(sock_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n == 0) {
        fail("peer closed the connection", 0);
        return;
      }
      if (errno == EAGAIN || errno == EINTR) break;
      fail("recv", errno);
      return;
    }
  }
  if (events & UV_WRITABLE) drain();
}

void TcpSink::onConnected() {
  uv_timer_stop(timer_.get());
  int one = 1;
  ::setsockopt(sock_.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int idle_s = static_cast<int>(std::max<int64_t>(1, cfg_.keepalive.count() / 1000));
  int intvl_s = std::max(1, idle_s / 3);
  int cnt = 3;
  ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s);
  ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  // A peer that stops acknowledging must not pin our pages for ever.
  unsigned user_timeout_ms = static_cast<unsigned>(cfg_.keepalive.count() * 2);
  ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
               sizeof user_timeout_ms);
  state_ = SinkState::kConnected;
  ++stats_.connects;
  backoff_.reset();
  if (outage_logged_) {
    spdlog::info("output '{}': connected to {} again", name_, currentAddress().toString());
    outage_logged_ = false;
  } else {
    spdlog::info("output '{}': connected to {}", name_, currentAddress().toString());
  }
  updatePollEvents();
  drain();
  listener_.sinkReady(*this);
}

void TcpSink::drain() {
  if (state_ != SinkState::kConnected) return;
  bool moved_any = false;
  while (drainable() > 0) {
    auto r = sys::splicePipeToFd(sys::SysCalls::real(), pipe_.readFd(), sock_.get(), nullptr,
                                 drainable(), false);
    if (!r.ok()) {
      if (r.error().code() == sys::ErrorCode::kWouldBlock) break;
      fail("send", r.error().sysErrno());
      return;
    }
    if (r.value() == 0) break;
    stream_written_ += r.value();
    stats_.bytes_sent += r.value();
    moved_any = true;
  }
  updatePollEvents();
  // Acknowledgements are read by the ack timer (every kAckPollMs), not after each send: right
  // after a send the queue still holds it, and two syscalls per send were a tenth of live-tail
  // CPU.
  if (moved_any) listener_.sinkReady(*this);
}

void TcpSink::updateAcks() {
  if (state_ != SinkState::kConnected || !sock_) return;
  int outq = 0;
  if (::ioctl(sock_.get(), SIOCOUTQ, &outq) != 0) return;
  struct tcp_info info {};
  socklen_t len = sizeof info;
  if (::getsockopt(sock_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
  // Read after SIOCOUTQ: if the connection is still established now, the queue length was
  // read while it was, so it was not purged by a reset.
  if (info.tcpi_state != TCP_ESTABLISHED) return;
  uint64_t unacked = static_cast<uint64_t>(std::max(outq, 0));
  if (unacked > stream_written_) return;
  deliveredUpTo(stream_written_ - unacked);
}

void TcpSink::fail(const std::string& why, int err) {
  if (stopping_) return;
  std::string detail = err ? why + ": " + std::strerror(err) : why;
  bool was_connected = state_ == SinkState::kConnected;
  if (was_connected) ++stats_.disconnects;
  if (!outage_logged_) {
    spdlog::warn("output '{}': {} ({}); retrying with backoff, the file is the buffer", name_,
                 detail, currentAddress().toString());
    outage_logged_ = true;
  } else {
    spdlog::debug("output '{}': {} ({})", name_, detail, currentAddress().toString());
  }
  closeConnection();
  rewindUnacknowledged();
  ++addr_index_;  // fail over to the next address
  scheduleReconnect();
}

void TcpSink::closeConnection() {
  poll_.close();  // uv_close stops the poll at once, so the fd can close now
  poll_events_ = 0;
  sock_.reset();
  if (timer_) uv_timer_stop(timer_.get());
}

void TcpSink::scheduleReconnect() {
  state_ = SinkState::kBackoff;
  // Back off only after a whole round of addresses failed.
  uint64_t delay = 0;
  if (addr_index_ % cfg_.addresses.size() == 0)
    delay = static_cast<uint64_t>(backoff_.next().count());
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->resolveNext();
      },
      delay, 0);
}

void TcpSink::stop() {
  stopping_ = true;
  if (state_ == SinkState::kConnected) updateAcks();
  closeConnection();
  state_ = SinkState::kStopped;
}

void TcpSink::close(std::function<void()> on_closed) {
  stop();
  timer_.close();
  ack_timer_.close();
  if (on_closed) on_closed();
}

}  // namespace logsplice::outputs
