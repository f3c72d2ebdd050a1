#include "outputs/tls_stream_sink.h"

#include <openssl/err.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "outputs/tcp_sink.h"
#include "outputs/tls_session.h"
#include "sys/assert.h"

namespace logsplice::outputs {
namespace {

// TLS 1.3 without a record from the server after the handshake: how long an alert refusing our
// certificate could still be on its way (as TlsEventSink).
constexpr uint64_t kAcceptWaitMs = 500;
// Userspace TLS: plaintext read out of the pipe per read(2), written as full records.
constexpr size_t kUserspaceRead = 4 * ktls::kRecordPlain;

}  // namespace

TlsStreamSink::TlsStreamSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                             SinkListener& listener, size_t pipe_bytes, sys::SysCalls& sys)
    : StreamSink(name, listener, sys),
      pipe_bytes_(pipe_bytes),
      cfg_(cfg),
      conn_(loop, name, cfg, *this),
      loop_(loop) {
  LS_ASSERT(cfg.tls.has_value(), "a TLS sink needs a tls: config");
}

TlsStreamSink::~TlsStreamSink() {
  SSL_free(ssl_);
}

SinkState TlsStreamSink::state() const {
  SinkState s = sinkStateOf(conn_.state());
  if (s == SinkState::kConnected && !tlsEstablished()) return SinkState::kConnecting;
  return s;
}

bool TlsStreamSink::canDeliver() const {
  return conn_.state() == TcpConnection::State::kConnected && tlsEstablished();
}

sys::Error TlsStreamSink::start() {
  // `require` is refused before any connection where the kernel cannot have it.
  plan_ = plan_override_ ? *plan_override_ : ktls::plan(cfg_.tls->ktls, true, kernelHasKtls());
  if (!plan_.refusal.empty()) {
    return sys::Error::invalidConfig("output '" + name() + "': " + plan_.refusal);
  }
  if (!ctx_) {
    auto ctx = TlsContext::create(name(), *cfg_.tls);
    if (!ctx.ok()) return ctx.error();
    ctx_ = std::move(ctx.value());
  }
  if (!handshake_timer_) LS_CHECK_UV(handshake_timer_.init(uv_timer_init, loop_, this));
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  out_buf_.resize(kUserspaceRead);
  return conn_.start();
}

sys::Error TlsStreamSink::reloadTls() {
  if (!ctx_) return sys::Error::ok();
  return ctx_->reload();
}

std::string TlsStreamSink::negotiated() const {
  if (!tlsEstablished()) return {};
  const char* cipher = SSL_get_cipher_name(ssl_);
  return std::string(SSL_get_version(ssl_)) + " " + (cipher ? cipher : "");
}

void TlsStreamSink::resetSession() {
  SSL_free(ssl_);
  ssl_ = nullptr;
  path_ = Path::kHandshake;
  acks_ = ktls::AckBound{};
  records_.clear();
  out_len_ = out_off_ = 0;
  accepted_ = false;
  failures_.newConnection();
  if (handshake_timer_) uv_timer_stop(handshake_timer_.get());
}

void TlsStreamSink::startTimer(uint64_t ms) {
  uv_timer_start(
      handshake_timer_.get(),
      [](uv_timer_t* t) {
        auto* s = static_cast<TlsStreamSink*>(t->data);
        if (!s || !s->ssl_) return;
        if (s->path_ == Path::kHandshake) {
          s->handshakeFailed("TLS handshake timed out");
        } else if (!s->accepted_) {
          s->accepted_ = true;  // no alert came: the server took our certificate
          s->updateAcks();
        }
      },
      ms, 0);
}

void TlsStreamSink::connectionUp() {
  resetSession();
  ssl_ = SSL_new(ctx_->get());
  if (ssl_ == nullptr) {
    conn_.fail(opensslError("SSL_new failed"), 0);
    return;
  }
  configureClientSsl(ssl_, conn_.currentAddress().host, cfg_.tls->server_name, cfg_.tls->verify);
  if (plan_.try_kernel) ktls::request(ssl_);
  // OpenSSL reads and writes the socket itself: only then can it hand the keys to the kernel.
  SSL_set_fd(ssl_, conn_.fd());
  SSL_set_connect_state(ssl_);
  startTimer(static_cast<uint64_t>(cfg_.connect_timeout.count()));
  stepHandshake();
}

void TlsStreamSink::stepHandshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established();
    return;
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    conn_.wantWritable(err == SSL_ERROR_WANT_WRITE);
    return;
  }
  handshakeFailed(sslFailure(ssl_, rc, "TLS handshake failed"));
}

void TlsStreamSink::handshakeFailed(const std::string& why) {
  failures_.count(why);  // connectionDown does not count it again
  conn_.fail(why, 0);       // logs the reason and backs off
}

void TlsStreamSink::established() {
  uv_timer_stop(handshake_timer_.get());
  const bool kernel = ktls::sendActive(ssl_);
  const std::string what = std::string(SSL_get_version(ssl_)) + " " +
                           (SSL_get_cipher_name(ssl_) ? SSL_get_cipher_name(ssl_) : "");
  switch (ktls::afterHandshake(cfg_.tls->ktls, kernel)) {
    case ktls::Outcome::kRefuse: {
      std::string why = ktls::refusalAfterHandshake(what);
      if (failures_.firstOf(why)) spdlog::error("output '{}': {}", name(), why);
      handshakeFailed(why);
      return;
    }
    case ktls::Outcome::kKernel:
      path_ = Path::kKernel;
      break;
    case ktls::Outcome::kUserspace:
      path_ = Path::kUserspace;
      break;
  }
  accepted_ = SSL_version(ssl_) != TLS1_3_VERSION;
  if (!accepted_) startTimer(std::min<uint64_t>(kAcceptWaitMs, cfg_.connect_timeout.count()));
  failures_.established();
  ++stats_.connects;
  spdlog::info("output '{}': TLS established with {} ({}, {})", name(), conn_.currentPeer(), what,
               kernel             ? "kernel TLS: the pipe is spliced into the socket"
               : plan_.try_kernel ? "userspace TLS: OpenSSL did not enable kTLS send"
                                  : "userspace TLS: " + plan_.why_userspace);
  drain();
  listener_.sinkReady(*this);
}

bool TlsStreamSink::connectionReadable() {
  if (ssl_ == nullptr) return false;
  if (path_ == Path::kHandshake) {
    stepHandshake();
  } else {
    readIncoming();
  }
  return true;
}

void TlsStreamSink::readIncoming() {
  BIO* rbio = SSL_get_rbio(ssl_);
  const uint64_t before = BIO_number_read(rbio);
  char buf[4096];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) continue;  // a collector of lines sends nothing we use
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    std::string why = err == SSL_ERROR_ZERO_RETURN ? "the collector closed the TLS session"
                                                   : sslFailure(ssl_, n, "TLS error");
    // Refused right after the handshake (TLS 1.3: our certificate): a handshake failure.
    if (!accepted_) {
      handshakeFailed(why);
    } else {
      conn_.fail(why, 0);
    }
    return;
  }
  if (!accepted_ && BIO_number_read(rbio) > before) {
    accepted_ = true;  // a record from the server after the handshake: it took the session
    uv_timer_stop(handshake_timer_.get());
    updateAcks();
  }
  // A userspace write that wanted a read (a TLS 1.2 renegotiation) can go on now.
  if (path_ == Path::kUserspace && ssl_ != nullptr) drain();
}

void TlsStreamSink::connectionWritable() {
  if (ssl_ == nullptr) return;
  if (path_ == Path::kHandshake) {
    stepHandshake();
  } else {
    drain();
  }
}

void TlsStreamSink::connectionDown(bool was_connected) {
  const bool was_established = tlsEstablished();
  if (was_established && !accepted_) failures_.closedAfterHandshake(name(), conn_.currentPeer());
  resetSession();
  if (was_connected && was_established) ++stats_.disconnects;
  // Before the handshake completed nothing left the pipe: it stays as it is.
  if (was_established) rewindUnacknowledged();
}

void TlsStreamSink::drain() {
  if (!canDeliver()) return;
  if (path_ == Path::kKernel) {
    drainKernel();
  } else {
    drainUserspace();
  }
}

void TlsStreamSink::drainKernel() {
  bool moved = false;
  while (drainable() > 0) {
    // No SPLICE_F_MORE: each call closes its last record (the accounting relies on it), and at
    // most kMaxSplice per call bounds what the kernel may hold above TCP (ktls::AckBound).
    auto r = spliceOut(conn_.fd(), nullptr, ktls::kMaxSplice);
    if (!r.ok()) {
      if (r.error().code() == sys::ErrorCode::kWouldBlock) break;
      conn_.fail("send (kernel TLS)", r.error().sysErrno());
      return;
    }
    if (r.value() == 0) break;
    acks_.sent(r.value());
    moved = true;
  }
  conn_.wantWritable(drainable() > 0);
  if (moved) listener_.sinkReady(*this);
}

void TlsStreamSink::drainUserspace() {
  bool moved = false;
  for (;;) {
    if (out_off_ == out_len_) {
      // Several records per read: one read syscall per 64 KiB, one write per record.
      const uint64_t want = std::min<uint64_t>(drainable(), out_buf_.size());
      if (want == 0) break;
      ssize_t n = ::read(pipe_.readFd(), out_buf_.data(), static_cast<size_t>(want));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the fill is registered but its bytes are not in the pipe yet
      out_len_ = static_cast<size_t>(n);
      out_off_ = 0;
      stats_.bytes_copied += static_cast<uint64_t>(n);
      stream_written_ += static_cast<uint64_t>(n);
    }
    // One full record per call. A retried SSL_write must pass the same buffer and length:
    // out_buf_ and out_off_ stay put until it succeeds.
    const size_t len = std::min<size_t>(out_len_ - out_off_, ktls::kRecordPlain);
    ERR_clear_error();
    int rc = SSL_write(ssl_, out_buf_.data() + out_off_, static_cast<int>(len));
    if (rc <= 0) {
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        conn_.wantWritable(true);
        if (moved) listener_.sinkReady(*this);
        return;
      }
      conn_.fail(sslFailure(ssl_, rc, "TLS write failed"), 0);
      return;
    }
    out_off_ += static_cast<size_t>(rc);
    stats_.bytes_sent += static_cast<uint64_t>(rc);
    // The record ends where the plaintext read so far, minus what is still in out_buf_, ends.
    records_.push_back(
        {BIO_number_written(SSL_get_wbio(ssl_)), stream_written_ - (out_len_ - out_off_)});
    moved = true;
  }
  conn_.wantWritable(false);
  if (moved) listener_.sinkReady(*this);
}

void TlsStreamSink::updateAcks() {
  if (ssl_ == nullptr || path_ == Path::kHandshake || !accepted_) return;
  auto unacked = conn_.unacknowledged();
  if (!unacked) return;
  if (path_ == Path::kKernel) {
    deliveredUpTo(std::min(acks_.poll(*unacked), stream_written_));
    return;
  }
  const uint64_t wire = BIO_number_written(SSL_get_wbio(ssl_));
  if (*unacked > wire) return;
  const uint64_t acked = wire - *unacked;
  uint64_t plain = 0;
  while (!records_.empty() && records_.front().wire_end <= acked) {
    plain = records_.front().plain_end;
    records_.pop_front();
  }
  if (plain > 0) deliveredUpTo(plain);
}

void TlsStreamSink::stop() {
  updateAcks();
  if (tlsEstablished() && conn_.state() == TcpConnection::State::kConnected) {
    // Best effort (the socket is non-blocking): the collector learns the stream ended cleanly.
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
  conn_.stop();
  resetSession();
}

void TlsStreamSink::close(std::function<void()> on_closed) {
  stop();
  auto pending = std::make_shared<int>(2);
  auto done = [pending, cb = std::move(on_closed)] {
    if (--*pending == 0 && cb) cb();
  };
  handshake_timer_.close(done);
  conn_.close(done);
}

void TlsStreamSink::collectMetrics(sys::MetricWriter& w) const {
  Sink::collectMetrics(w);
  collectTlsMetrics(w, name(), failures_, ktlsInUse());
}

}  // namespace logsplice::outputs
