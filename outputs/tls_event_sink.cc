#include "outputs/tls_event_sink.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>

#include "outputs/ktls.h"
#include "outputs/tcp_sink.h"
#include "sys/assert.h"

namespace logsplice::outputs {
namespace {

// Plaintext encrypted per sendFramed call: four full records, then the socket gets them.
constexpr size_t kPlainPerSend = 64 * 1024;
constexpr size_t kRecordBytes = 16 * 1024;
// TLS 1.3 without a record from the server after the handshake: how long an alert refusing our
// certificate could still be on its way.
constexpr uint64_t kAcceptWaitMs = 500;

}  // namespace

TlsEventSink::TlsEventSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                           SinkListener& listener, size_t pipe_bytes,
                           std::unique_ptr<Framer> framer, Limits limits, sys::SysCalls& sys)
    : EventSink(name, listener, std::move(framer), limits, sys),
      pipe_bytes_(pipe_bytes),
      cfg_(cfg),
      conn_(loop, name, cfg, *this),
      loop_(loop) {
  LS_ASSERT(cfg.tls.has_value(), "a TLS sink needs a tls: config");
}

TlsEventSink::~TlsEventSink() = default;

SinkState TlsEventSink::state() const {
  SinkState s = sinkStateOf(conn_.state());
  // Connected over TCP but not yet through the handshake: still connecting.
  if (s == SinkState::kConnected && !tlsEstablished()) return SinkState::kConnecting;
  return s;
}

bool TlsEventSink::canDeliver() const {
  return conn_.state() == TcpConnection::State::kConnected && tlsEstablished();
}

sys::Error TlsEventSink::start() {
  const ktls::Plan plan =
      ktls::plan(cfg_.tls->ktls, cfg_.format == config::EventFormat::kRaw, kernelHasKtls());
  if (!plan.refusal.empty()) {
    return sys::Error::invalidConfig("output '" + name() + "': " + plan.refusal);
  }
  if (plan.try_kernel && cfg_.tls->ktls == config::KtlsMode::kRequire) {
    // makeSink gives such an output a TlsStreamSink; this sink encrypts in userspace only.
    return sys::Error::invalidConfig("output '" + name() +
                                     "': tls.ktls is 'require' and this sink is userspace TLS");
  }
  userspace_reason_ = plan.try_kernel ? "userspace TLS" : "userspace TLS: " + plan.why_userspace;
  if (!ctx_) {
    auto ctx = TlsContext::create(name(), *cfg_.tls);
    if (!ctx.ok()) return ctx.error();
    ctx_ = std::move(ctx.value());
  }
  if (!handshake_timer_) LS_CHECK_UV(handshake_timer_.init(uv_timer_init, loop_, this));
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  return conn_.start();
}

sys::Error TlsEventSink::reloadTls() {
  if (!ctx_) return sys::Error::ok();
  return ctx_->reload();
}

std::string TlsEventSink::negotiated() const {
  if (!tlsEstablished()) return {};
  return session_->protocol() + " " + session_->cipher();
}

void TlsEventSink::resetSession() {
  session_.reset();
  sock_out_.clear();
  sock_out_.resetSent();
  cipher_total_ = plain_total_ = 0;
  records_.clear();
  accepted_ = false;
  failures_.newConnection();
  if (handshake_timer_) uv_timer_stop(handshake_timer_.get());
}

void TlsEventSink::startTimer(uint64_t ms) {
  uv_timer_start(
      handshake_timer_.get(),
      [](uv_timer_t* t) {
        auto* s = static_cast<TlsEventSink*>(t->data);
        if (!s || !s->session_) return;
        if (!s->session_->established()) {
          s->handshakeFailed("TLS handshake timed out");
        } else if (!s->accepted_) {
          s->accepted_ = true;  // no alert came: the server took our certificate
          s->updateAcks();
        }
      },
      ms, 0);
}

void TlsEventSink::connectionUp() {
  resetSession();
  session_ = std::make_unique<TlsSession>(ctx_->get(), conn_.currentAddress().host,
                                          cfg_.tls->server_name, cfg_.tls->verify);
  startTimer(static_cast<uint64_t>(cfg_.connect_timeout.count()));
  if (session_->handshake() == TlsSession::Step::kFailed) {
    handshakeFailed(session_->failure());
    return;
  }
  if (int err = flushCipher()) conn_.fail("send (TLS handshake)", err);
}

void TlsEventSink::handshakeFailed(const std::string& why) {
  failures_.count(why);  // connectionDown does not count it again
  // The connection logs the reason (a warning for each new outage) and backs off.
  conn_.fail(why, 0);
}

void TlsEventSink::established() {
  uv_timer_stop(handshake_timer_.get());
  accepted_ = !session_->tls13();
  if (!accepted_) startTimer(std::min<uint64_t>(kAcceptWaitMs, cfg_.connect_timeout.count()));
  failures_.established();
  ++stats_.connects;
  spdlog::info("output '{}': TLS established with {} ({}, {})", name(), conn_.currentPeer(),
               negotiated(), userspace_reason_);
  drain();
  listener_.sinkReady(*this);
}

void TlsEventSink::connectionData(const char* data, size_t len) {
  if (!session_) return;
  session_->feed(data, len);
  if (!session_->established()) {
    TlsSession::Step step = session_->handshake();
    if (step == TlsSession::Step::kFailed) {
      // The alert we send tells the collector why; it may not get there, which is fine.
      flushCipher();
      handshakeFailed(session_->failure());
      return;
    }
    if (int err = flushCipher()) {
      conn_.fail("send (TLS handshake)", err);
      return;
    }
    if (step == TlsSession::Step::kDone) established();
    return;
  }
  if (!session_->processIncoming()) {
    // Refused right after the handshake (TLS 1.3: our certificate): a handshake failure.
    if (!accepted_) {
      handshakeFailed(session_->failure());
    } else {
      conn_.fail(session_->failure(), 0);
    }
    return;
  }
  if (!accepted_) {
    accepted_ = true;  // a record from the server after the handshake: it took the session
    uv_timer_stop(handshake_timer_.get());
    updateAcks();
    if (!session_) return;
  }
  if (int err = flushCipher()) conn_.fail("send", err);
}

void TlsEventSink::connectionWritable() {
  if (int err = flushCipher()) {
    conn_.fail("send", err);
    return;
  }
  if (tlsEstablished()) {
    drain();
  } else {
    conn_.wantWritable(sock_out_.pending());
  }
}

void TlsEventSink::connectionDown(bool was_connected) {
  bool was_established = tlsEstablished();
  if (was_established && !accepted_) failures_.closedAfterHandshake(name(), conn_.currentPeer());
  resetSession();
  if (was_connected && was_established) ++stats_.disconnects;
  // Before the handshake completed nothing was read out of the pipe: it stays as it is, and a
  // refusing collector costs no resend.
  if (was_established) rewindEvents();
}

void TlsEventSink::waitWritable(bool on) {
  conn_.wantWritable(on || sock_out_.pending());
}

int TlsEventSink::flushCipher() {
  if (session_) cipher_total_ += session_->takeCiphertext(sock_out_.tail());
  int err = sock_out_.flush(conn_.fd());
  if (err == EAGAIN) {
    conn_.wantWritable(true);
    return 0;
  }
  return err;
}

sys::SysResult TlsEventSink::sendFramed(const iovec* iov, int n) {
  if (int err = flushCipher()) return {-1, err};
  // Records still waiting for the socket: take no more plaintext (memory stays bounded).
  if (sock_out_.pending()) return {-1, EAGAIN};
  size_t taken = 0;
  for (int i = 0; i < n && taken < kPlainPerSend; ++i) {
    const char* p = static_cast<const char*>(iov[i].iov_base);
    size_t len = std::min(iov[i].iov_len, kPlainPerSend - taken);
    for (size_t off = 0; off < len;) {
      size_t chunk = std::min(len - off, kRecordBytes);
      if (!session_->write(p + off, chunk)) {
        spdlog::warn("output '{}': {}", name(), session_->failure());
        return {-1, EPROTO};
      }
      cipher_total_ += session_->takeCiphertext(sock_out_.tail());
      plain_total_ += chunk;
      records_.push_back({cipher_total_, plain_total_});
      off += chunk;
    }
    taken += len;
  }
  if (int err = flushCipher()) return {-1, err};
  return {static_cast<ssize_t>(taken), 0};
}

void TlsEventSink::pollAcknowledged() {
  if (!accepted_) return;
  auto unacked = conn_.unacknowledged();
  if (!unacked || *unacked > sock_out_.sent()) return;
  const uint64_t acked = sock_out_.sent() - *unacked;
  bool any = false;
  uint64_t plain = 0;
  while (!records_.empty() && records_.front().wire_end <= acked) {
    plain = records_.front().plain_end;
    records_.pop_front();
    any = true;
  }
  if (any) acknowledgedWire(plain);
}

void TlsEventSink::updateAcks() {
  size_t before = eventsInFlight();
  pollAcknowledged();
  if (eventsInFlight() < before) drain();
}

void TlsEventSink::stop() {
  pollAcknowledged();
  if (tlsEstablished() && conn_.state() == TcpConnection::State::kConnected) {
    // Best effort: what the socket takes now, without waiting.
    session_->shutdown();
    (void)flushCipher();
  }
  stopEvents();  // a pending multiline event is not sent: it is read again after a restart
  conn_.stop();
  resetSession();
}

void TlsEventSink::close(std::function<void()> on_closed) {
  stop();
  // Three close asynchronously (and may outlive this object): call back after the last one.
  auto pending = std::make_shared<int>(3);
  auto done = [pending, cb = std::move(on_closed)] {
    if (--*pending == 0 && cb) cb();
  };
  handshake_timer_.close(done);
  closeEvents(done);
  conn_.close(done);
}

void TlsEventSink::collectMetrics(sys::MetricWriter& w) const {
  EventSink::collectMetrics(w);
  collectTlsMetrics(w, name(), failures_, ktlsInUse());
}

}  // namespace logsplice::outputs
