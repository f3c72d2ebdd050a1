#include "outputs/relp_event_sink.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>

#include "outputs/relp_framer.h"
#include "outputs/tcp_sink.h"

namespace logsplice::outputs {
namespace {

// Plaintext encrypted per sendFramed call under TLS (four full records), as the TLS sink does.
constexpr size_t kPlainPerSend = 64 * 1024;
// Decrypted bytes handed to the parser at a time.
constexpr size_t kPlainPerRead = 16 * 1024;
// How long stop() waits for the answer to `close` before dropping the connection.
constexpr uint64_t kCloseWaitMs = 500;
constexpr uint32_t kOpenTxnr = 1;

}  // namespace

EventSink::Limits RelpEventSink::limitsFor(const config::RelpOutput& cfg, Limits limits) {
  limits.max_events_in_flight = static_cast<size_t>(std::max<uint64_t>(cfg.window, 1));
  return limits;
}

RelpEventSink::RelpEventSink(uv_loop_t* loop, std::string name, const config::RelpOutput& cfg,
                             SinkListener& listener, size_t pipe_bytes,
                             std::unique_ptr<Framer> framer, sys::Clock& clock, Limits limits)
    : detail::RelpWindowHolder(clock),
      EventSink(name, listener, std::make_unique<RelpFramer>(std::move(framer), window_),
                limitsFor(cfg, limits)),
      cfg_(cfg),
      pipe_bytes_(pipe_bytes),
      clock_(clock),
      conn_(loop, name, cfg.tcp, *this) {}

RelpEventSink::~RelpEventSink() = default;

SinkState RelpEventSink::state() const {
  SinkState s = sinkStateOf(conn_.state());
  // Connected over TCP but no session yet (TLS handshake, waiting for the answer to `open`).
  if (s == SinkState::kConnected && session_ != Session::kOpen) return SinkState::kConnecting;
  return s;
}

bool RelpEventSink::canDeliver() const {
  return session_ == Session::kOpen && conn_.state() == TcpConnection::State::kConnected;
}

sys::Error RelpEventSink::start() {
  if (cfg_.tcp.tls && !ctx_) {
    auto ctx = TlsContext::create(name(), *cfg_.tcp.tls);
    if (!ctx.ok()) return ctx.error();
    ctx_ = std::move(ctx.value());
  }
  close_requested_ = false;
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  return conn_.start();
}

sys::Error RelpEventSink::reloadTls() {
  if (!ctx_) return sys::Error::ok();
  return ctx_->reload();
}

void RelpEventSink::resetSession() {
  ++session_seq_;
  session_ = Session::kNone;
  opened_ = false;
  tls_.reset();
  parser_.reset();
  sock_out_.clear();
  window_.reset(relp::nextTxnr(kOpenTxnr));
  acked_reported_ = 0;
}

void RelpEventSink::connectionUp() {
  resetSession();
  session_started_ms_ = clock_.monotonicMs();
  if (!ctx_) {
    sendOpen();
    return;
  }
  session_ = Session::kHandshake;
  tls_ = std::make_unique<TlsSession>(ctx_->get(), conn_.currentAddress().host,
                                      cfg_.tcp.tls->server_name, cfg_.tcp.tls->verify);
  if (tls_->handshake() == TlsSession::Step::kFailed) {
    ++handshake_failures_;
    conn_.fail(std::string(tls_->failure()), 0);
    return;
  }
  if (int err = flushSocket()) conn_.fail("send (TLS handshake)", err);
}

void RelpEventSink::sendOpen() {
  session_ = Session::kOpening;
  session_started_ms_ = clock_.monotonicMs();
  std::string frame;
  relp::appendFrame(kOpenTxnr, "open", relp::openOffers(), frame);
  sendControl(frame);
}

void RelpEventSink::sendControl(const std::string& frame) {
  if (tls_) {
    if (!tls_->write(frame.data(), frame.size())) {
      conn_.fail(std::string(tls_->failure()), 0);
      return;
    }
  } else {
    sock_out_.tail() += frame;
  }
  if (int err = flushSocket()) conn_.fail("send", err);
}

int RelpEventSink::flushSocket() {
  if (tls_) tls_->takeCiphertext(sock_out_.tail());
  int err = sock_out_.flush(conn_.fd());
  if (err == EAGAIN) {
    conn_.wantWritable(true);
    return 0;
  }
  return err;
}

sys::SysResult RelpEventSink::sendFramed(const iovec* iov, int n) {
  if (int err = flushSocket()) return {-1, err};
  // Bytes still waiting for the socket go first (and bound what is held here).
  if (socketPending()) return {-1, EAGAIN};
  if (!tls_) return EventSink::sendFramed(iov, n);
  size_t taken = 0;
  for (int i = 0; i < n && taken < kPlainPerSend; ++i) {
    size_t len = std::min(iov[i].iov_len, kPlainPerSend - taken);
    if (!tls_->write(static_cast<const char*>(iov[i].iov_base), len)) {
      spdlog::warn("output '{}': {}", name(), tls_->failure());
      return {-1, EPROTO};
    }
    taken += len;
  }
  if (int err = flushSocket()) return {-1, err};
  return {static_cast<ssize_t>(taken), 0};
}

void RelpEventSink::waitWritable(bool on) {
  conn_.wantWritable(on || socketPending());
}

void RelpEventSink::connectionWritable() {
  if (int err = flushSocket()) {
    conn_.fail("send", err);
    return;
  }
  if (canDeliver()) {
    drain();
  } else {
    conn_.wantWritable(socketPending());
  }
}

void RelpEventSink::connectionData(const char* data, size_t len) {
  if (!tls_) {
    onRelpBytes(data, len);
    return;
  }
  tls_->feed(data, len);
  if (!tls_->established()) {
    TlsSession::Step step = tls_->handshake();
    if (step == TlsSession::Step::kFailed) {
      (void)flushSocket();  // the alert tells the collector why; it may not get there
      ++handshake_failures_;
      conn_.fail(std::string(tls_->failure()), 0);
      return;
    }
    if (int err = flushSocket()) {
      conn_.fail("send (TLS handshake)", err);
      return;
    }
    if (step != TlsSession::Step::kDone) return;
    spdlog::info("output '{}': TLS established with {} ({} {})", name(), conn_.currentPeer(),
                 tls_->protocol(), tls_->cipher());
    sendOpen();
    // Application data may have come with the last handshake records.
  }
  const uint64_t seq = session_seq_;
  for (;;) {
    plain_in_.clear();
    bool ok = tls_->readIncoming(plain_in_, kPlainPerRead);
    if (!plain_in_.empty()) onRelpBytes(plain_in_.data(), plain_in_.size());
    if (seq != session_seq_) return;
    if (!ok) {
      conn_.fail(std::string(tls_->failure()), 0);
      return;
    }
    if (plain_in_.size() < kPlainPerRead) break;
  }
  if (int err = flushSocket()) conn_.fail("send", err);
}

void RelpEventSink::onRelpBytes(const char* data, size_t len) {
  const uint64_t seq = session_seq_;
  const size_t in_flight_before = eventsInFlight();
  parser_.feed(data, len);
  relp::Frame frame;
  for (;;) {
    relp::Parser::Result r = parser_.next(frame);
    if (r == relp::Parser::Result::kNeedMore) break;
    if (r == relp::Parser::Result::kError) {
      protocolError(parser_.error());
      return;
    }
    if (!onFrame(frame) || seq != session_seq_) return;
  }
  // The answers of this read, reported at once (per file, not per answer); they made room in
  // the window: send what waits.
  reportAcks();
  if (eventsInFlight() < in_flight_before && canDeliver()) drain();
}

void RelpEventSink::reportAcks() {
  if (opened_ && window_.ackedWire() > acked_reported_) {
    acked_reported_ = window_.ackedWire();
    acknowledgedWire(acked_reported_);
  }
}

bool RelpEventSink::onFrame(const relp::Frame& frame) {
  if (frame.command == "serverclose" && frame.txnr == 0) {
    spdlog::info("output '{}': the collector closed the RELP session (serverclose)", name());
    if (session_ == Session::kClosing) {
      finishClose();
    } else {
      conn_.fail("the collector closed the RELP session", 0);
    }
    return false;
  }
  if (frame.command != "rsp") {
    protocolError("unexpected command '" + relp::printable(frame.command) + "'");
    return false;
  }
  if (session_ == Session::kClosing && frame.txnr == close_txnr_) {
    finishClose();  // rsyslog answers `close` with an empty rsp
    return false;
  }
  relp::Rsp rsp;
  if (!relp::parseRsp(frame.data, rsp)) {
    protocolError("malformed rsp for transaction " + std::to_string(frame.txnr) + ": '" +
                  relp::printable(frame.data) + "'");
    return false;
  }
  return onRsp(frame, rsp);
}

bool RelpEventSink::onRsp(const relp::Frame& frame, const relp::Rsp& rsp) {
  if (session_ == Session::kOpening) {
    if (frame.txnr != kOpenTxnr) {
      protocolError("rsp for transaction " + std::to_string(frame.txnr) +
                    " before the answer to open");
      return false;
    }
    if (rsp.code != 200) {
      ++rsp_errors_;
      breakSession("the collector refused the RELP session: " + std::to_string(rsp.code) + " " +
                   relp::printable(rsp.text));
      return false;
    }
    if (!relp::offersCommand(rsp.data, "syslog")) {
      breakSession("the collector does not offer commands=syslog (offers: '" +
                   relp::printable(rsp.data) + "')");
      return false;
    }
    sessionOpen();
    return true;
  }
  if (session_ != Session::kOpen && session_ != Session::kClosing) {
    protocolError("rsp for transaction " + std::to_string(frame.txnr) + " without a session");
    return false;
  }
  if (rsp.code != 200) {
    ++rsp_errors_;
    std::string text = "the collector refused transaction " + std::to_string(frame.txnr) + ": " +
                       std::to_string(rsp.code) + " " + relp::printable(rsp.text);
    breakSession(text);
    return false;
  }
  const uint64_t wire_end = window_.wireEndOf(frame.txnr);
  if (wire_end == 0 || wire_end > wireWritten()) {
    protocolError("rsp for transaction " + std::to_string(frame.txnr) +
                  (wire_end == 0 ? ", never sent or answered already" : ", not sent yet"));
    return false;
  }
  switch (window_.acknowledge(frame.txnr)) {
    case RelpWindow::Ack::kAdvanced:
    case RelpWindow::Ack::kHeld:
      return true;  // reported after the read (onRelpBytes)
    case RelpWindow::Ack::kUnknown:
      break;
  }
  protocolError("second rsp for transaction " + std::to_string(frame.txnr));
  return false;
}

void RelpEventSink::sessionOpen() {
  session_ = Session::kOpen;
  opened_ = true;
  last_refusal_.clear();
  ++sessions_opened_;
  ++stats_.connects;
  spdlog::info("output '{}': RELP session open with {}", name(), conn_.currentPeer());
  drain();
  listener_.sinkReady(*this);
}

void RelpEventSink::protocolError(const std::string& why) {
  ++protocol_errors_;
  breakSession("RELP protocol error: " + why);
}

void RelpEventSink::breakSession(const std::string& why) {
  if (why != last_refusal_) {
    spdlog::warn("output '{}': {} ({}); resending from the first unacknowledged event", name(), why,
                 conn_.currentPeer());
    last_refusal_ = why;
  }
  if (session_ == Session::kClosing) {
    finishClose();
    return;
  }
  conn_.fail(why, 0);
}

void RelpEventSink::connectionDown(bool was_connected) {
  reportAcks();  // what was answered before the break is delivered, not resent
  const bool was_open = opened_;
  const bool closing = session_ == Session::kClosing;
  resetSession();
  if (was_connected && was_open) ++stats_.disconnects;
  // Before the session opened nothing was read out of the pipe: it stays as it is.
  if (was_open) rewindEvents();
  if (closing) finishClose();
}

void RelpEventSink::connectionAckTick() {
  const uint64_t now = clock_.monotonicMs();
  const uint64_t since = now > session_started_ms_ ? now - session_started_ms_ : 0;
  switch (session_) {
    case Session::kHandshake:
      if (since > static_cast<uint64_t>(cfg_.tcp.connect_timeout.count())) {
        ++handshake_failures_;
        conn_.fail("TLS handshake timed out", 0);
      }
      return;
    case Session::kOpening:
      if (since > static_cast<uint64_t>(cfg_.timeout.count())) {
        ++timeouts_;
        breakSession("no answer to RELP open within " + std::to_string(cfg_.timeout.count()) +
                     " ms");
      }
      return;
    case Session::kOpen:
      if (window_.oldestAgeMs() > static_cast<uint64_t>(cfg_.timeout.count())) {
        ++timeouts_;
        breakSession("no answer to RELP transaction " + std::to_string(window_.oldestTxnr()) +
                     " within " + std::to_string(cfg_.timeout.count()) + " ms");
      }
      return;
    case Session::kClosing:
      if (since > kCloseWaitMs) finishClose();
      return;
    case Session::kNone:
      return;
  }
}

void RelpEventSink::pollAcknowledged() {
  // Answers arrive on their own; this also lets go of queued entries that frame nothing
  // (a '\n' that ended no line) behind the answered frames.
  reportAcks();
  if (opened_) acknowledgedWire(acked_reported_);
}

void RelpEventSink::refreshDelivery() {
  size_t before = eventsInFlight();
  pollAcknowledged();
  if (eventsInFlight() < before && canDeliver()) drain();
}

void RelpEventSink::stop() {
  pollAcknowledged();
  stopEvents();  // a pending multiline event is not sent: it is read again after a restart
  // `close` only between whole frames (a frame partly written cannot be followed by another).
  if (canDeliver() && window_.wireFramed() == wireWritten() && !socketPending()) {
    close_txnr_ = window_.nextTxnr();
    session_ = Session::kClosing;
    session_started_ms_ = clock_.monotonicMs();
    std::string frame;
    relp::appendFrame(close_txnr_, "close", "", frame);
    sendControl(frame);
    if (session_ == Session::kClosing) return;  // waits for the answer (finishClose)
  }
  conn_.stop();
  resetSession();
}

void RelpEventSink::finishClose() {
  reportAcks();
  if (session_ == Session::kClosing) spdlog::debug("output '{}': RELP session closed", name());
  conn_.stop();
  resetSession();
  if (close_requested_) {
    close_requested_ = false;
    auto pending = std::make_shared<int>(2);
    auto done = [pending, cb = std::move(on_closed_)] {
      if (--*pending == 0 && cb) cb();
    };
    on_closed_ = nullptr;
    closeEvents(done);
    conn_.close(done);
  }
}

void RelpEventSink::close(std::function<void()> on_closed) {
  if (session_ != Session::kClosing) stop();
  on_closed_ = std::move(on_closed);
  close_requested_ = true;
  // Closing: the answer to `close`, the collector's close or the wait's end finishes it.
  if (session_ != Session::kClosing) finishClose();
}

void RelpEventSink::collectMetrics(sys::MetricWriter& w) const {
  EventSink::collectMetrics(w);
  const sys::MetricLabels by_output = {{"output", name()}};
  w.counter("logsplice_relp_rsp_errors_total",
            "RELP answers other than 200 (the collector refused a frame; the session is resent).",
            by_output, static_cast<double>(rsp_errors_));
  w.counter("logsplice_relp_protocol_errors_total",
            "RELP sessions dropped for bytes from the collector that break the protocol.",
            by_output, static_cast<double>(protocol_errors_));
  w.counter("logsplice_relp_timeouts_total",
            "RELP sessions dropped because a frame stayed unanswered past the timeout.", by_output,
            static_cast<double>(timeouts_));
  w.counter("logsplice_relp_sessions_total", "RELP sessions opened.", by_output,
            static_cast<double>(sessions_opened_));
  w.gauge("logsplice_relp_window_used", "RELP syslog frames sent and not yet answered.", by_output,
          static_cast<double>(window_.unanswered()));
  w.gauge("logsplice_relp_window_size", "The most RELP frames this output leaves unanswered.",
          by_output, static_cast<double>(limits().max_events_in_flight));
  if (cfg_.tcp.tls) {
    w.counter("logsplice_tls_handshake_failures_total", "TLS handshakes that failed.", by_output,
              static_cast<double>(handshake_failures_));
  }
}

}  // namespace logsplice::outputs
