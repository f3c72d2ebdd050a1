#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "outputs/event_sink.h"
#include "outputs/socket_out_buffer.h"
#include "outputs/relp_protocol.h"
#include "outputs/relp_window.h"
#include "outputs/tcp_connection.h"
#include "outputs/tls_context.h"
#include "outputs/tls_session.h"

namespace logsplice::outputs {

namespace detail {
// Holds the window ahead of the EventSink base, whose framer numbers frames through it.
struct RelpWindowHolder {
  explicit RelpWindowHolder(sys::Clock& clock) : window_(clock) {}
  RelpWindow window_;
};
}  // namespace detail

// Events to a RELP collector (rsyslog's imrelp), each acknowledged by the collector itself: an
// event counts as delivered only once the server answered its `syslog` frame with `rsp 200`, so
// a collector that crashes with events in its socket buffer loses none of them (they are sent
// again on the next session; the collector may then see some twice).
//
// The protocol runs on the loop, non-blocking, over a TcpConnection (librelp's client API
// blocks and runs threads of its own). A session: `open` (txnr 1, our offers), and once its
// `rsp 200` offers `commands=syslog`, one `syslog` frame per event (txnr 2, 3, ..., wrapping
// after 999,999,999 to 1), at most `window` unanswered. Answers:
// - `rsp 200` for a frame: answered; the frames answered without a gap from the oldest on are
//   reported acknowledged (acknowledgedWire), i.e. each file delivered up to its last whole
//   acknowledged event;
// - any other code: the collector refused it: logged with its text, counted, and the session is
//   dropped; the next one resends from the first unacknowledged event;
// - an `rsp` for a number never sent (or answered already), or bytes that are not RELP: a
//   protocol error, counted; the session is dropped and resent the same way, nothing lost;
// - `serverclose`: the collector ends the session (it is opened again after the backoff).
// The oldest unanswered frame older than `timeout` (or an `open` unanswered that long) drops the
// session too. At stop, `close` is sent and its answer awaited briefly.
//
// With `tls:`, the session runs over TLS from the first byte (imrelp tls="on"), userspace TLS
// over memory BIOs (TlsSession); the answers, not the TCP stack, say what was delivered.
// Memory is bounded as for every event sink (the window caps the frames in flight; resends are
// read again from the files). Loop thread only; the loop and the listener must outlive it.
class RelpEventSink : private detail::RelpWindowHolder,
                      public EventSink,
                      private TcpConnection::Handler {
 public:
  enum class Session { kNone, kHandshake, kOpening, kOpen, kClosing };

  // `framer`: the syslog events with octet counting ("LEN SP MSG"); each gets its RELP header.
  // The window of `cfg` replaces limits.max_events_in_flight.
  RelpEventSink(uv_loop_t* loop, std::string name, const config::RelpOutput& cfg,
                SinkListener& listener, size_t pipe_bytes, std::unique_ptr<Framer> framer,
                sys::Clock& clock = sys::Clock::real(), Limits limits = {});
  ~RelpEventSink() override;

  SinkState state() const override;
  void refreshDelivery() override;
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  void collectMetrics(sys::MetricWriter& w) const override;
  // SIGHUP: re-reads the TLS certificates (sessions opened from now on use them).
  sys::Error reloadTls();

  TcpConnection& connection() { return conn_; }
  Session session() const { return session_; }
  const RelpWindow& window() const { return window_; }
  uint64_t rspErrors() const { return rsp_errors_; }
  uint64_t protocolErrors() const { return protocol_errors_; }
  uint64_t timeouts() const { return timeouts_; }
  uint64_t sessionsOpened() const { return sessions_opened_; }

  // `limits` with the output's window as its cap on events in flight.
  static Limits limitsFor(const config::RelpOutput& cfg, Limits limits = {});

 protected:
  bool canDeliver() const override;
  int outFd() const override { return conn_.fd(); }
  void waitWritable(bool on) override;
  void writeFailed(int err) override { conn_.fail("send", err); }
  void pollAcknowledged() override;
  sys::SysResult sendFramed(const iovec* iov, int n) override;

 private:
  void connectionUp() override;
  void connectionWritable() override;
  void connectionDown(bool was_connected) override;
  void connectionAckTick() override;
  void connectionData(const char* data, size_t len) override;

  void sendOpen();
  // Sends a protocol frame (open, close) ahead of any event bytes.
  void sendControl(const std::string& frame);
  // Writes the bytes waiting for the socket (control frames, ciphertext): 0 or an errno.
  int flushSocket();
  bool socketPending() const { return sock_out_.pending(); }
  void onRelpBytes(const char* data, size_t len);
  // Handles one frame; false when the session was dropped.
  bool onFrame(const relp::Frame& frame);
  bool onRsp(const relp::Frame& frame, const relp::Rsp& rsp);
  void protocolError(const std::string& why);
  void breakSession(const std::string& why);
  void sessionOpen();
  void resetSession();
  void finishClose();
  // Reports the answered prefix (acknowledgedWire) if it moved: once per read, not per answer.
  void reportAcks();

  config::RelpOutput cfg_;
  size_t pipe_bytes_;
  sys::Clock& clock_;
  TcpConnection conn_;
  std::shared_ptr<TlsContext> ctx_;
  std::unique_ptr<TlsSession> tls_;
  relp::Parser parser_;
  Session session_ = Session::kNone;
  bool opened_ = false;  // events may have been read out since the connect
  uint64_t session_started_ms_ = 0;
  uint64_t session_seq_ = 0;  // bumped when a session ends: stale work stops
  uint32_t close_txnr_ = 0;
  uint64_t acked_reported_ = 0;  // window_.ackedWire() last passed to acknowledgedWire()
  SocketOutBuffer sock_out_;          // bytes not yet taken by the socket
  std::string plain_in_;  // scratch for decrypted bytes
  std::function<void()> on_closed_;
  bool close_requested_ = false;
  uint64_t rsp_errors_ = 0;
  uint64_t protocol_errors_ = 0;
  uint64_t timeouts_ = 0;
  uint64_t sessions_opened_ = 0;
  uint64_t handshake_failures_ = 0;
  std::string last_refusal_;  // the last refusal logged as a warning (once per distinct text)
};

}  // namespace logsplice::outputs
