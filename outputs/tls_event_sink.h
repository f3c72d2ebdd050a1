#pragma once

#include <uv.h>

#include <deque>
#include <memory>
#include <string>

#include "config/config.h"
#include "outputs/tls_handshake_failures.h"
#include "outputs/event_sink.h"
#include "outputs/socket_out_buffer.h"
#include "outputs/tcp_connection.h"
#include "outputs/tls_context.h"
#include "outputs/tls_session.h"

namespace logsplice::outputs {

// Each line as it is, with its '\n': the bytes a plain raw output splices, through the event
// sink's per-line accounting. Raw TLS outputs are TlsStreamSinks (outputs/tls_stream_sink.h);
// this framer lets the tests drive this sink's TLS transport with plain lines.
class RawLineFramer : public Framer {
 public:
  void frame(const LineView& line, std::string& out) override {
    out.append(line.bytes);
    if (!line.partial) out.push_back('\n');
  }
};

// An event sink whose transport is TLS over a TcpConnection (userspace TLS: this is the copy
// path, every byte read out of the pipe is counted in bytes_copied). After the TCP connect it
// runs a non-blocking handshake on the loop (what the peer sends arrives through the
// connection's reads; a timer bounds it by connect_timeout); a failed one is logged with
// OpenSSL's reason and the verify result, counted, and retried with the output's backoff while
// the file stays the buffer.
//
// The session works over memory BIOs and this class writes the ciphertext to the socket itself,
// so it knows the exact wire size of every record. Plaintext is written in records of at most
// 16 KiB, each remembered as (socket byte position at its end, plaintext position at its end).
// SIOCOUTQ counts unacknowledged socket bytes (docs/design.md K6): once a record's last byte is
// acknowledged its plaintext is, and the event sink reports whole events up to there delivered.
// A broken connection resends from the first line of the first unacknowledged event.
//
// TLS 1.3 ends the client's handshake before the server has judged the client's certificate: a
// refusal comes as an alert after our first records, which the server's TCP stack acknowledged
// all the same. So under TLS 1.3 nothing is reported delivered until the server is known to
// have accepted the session: it sent a record after the handshake (OpenSSL servers send session
// tickets then), or no alert came within a short wait.
// Loop thread only; the loop and the listener must outlive it.
class TlsEventSink : public EventSink, private TcpConnection::Handler {
 public:
  TlsEventSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
               SinkListener& listener, size_t pipe_bytes, std::unique_ptr<Framer> framer,
               Limits limits = {}, sys::SysCalls& sys = sys::SysCalls::real());
  ~TlsEventSink() override;

  SinkState state() const override;
  void refreshDelivery() override { updateAcks(); }
  // Builds the TLS context (an error names the bad file, or says why kTLS cannot be had:
  // `ktls: require` is refused here; raw outputs get kernel TLS from TlsStreamSink).
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  void collectMetrics(sys::MetricWriter& w) const override;
  void updateAcks();
  // SIGHUP: re-reads the certificates; a bad new one keeps the old context (and says why).
  // Connections made from now on use the new one.
  sys::Error reloadTls();

  TcpConnection& connection() { return conn_; }
  bool tlsEstablished() const { return session_ && session_->established(); }
  uint64_t handshakeFailures() const { return failures_.total(); }
  // Why the last handshake failed (OpenSSL's reason, the certificate verify result).
  const std::string& lastHandshakeFailure() const { return failures_.last(); }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" once established.
  std::string negotiated() const;
  bool ktlsInUse() const { return false; }

 protected:
  bool canDeliver() const override;
  int outFd() const override { return conn_.fd(); }
  void waitWritable(bool on) override;
  void writeFailed(int err) override { conn_.fail("send", err); }
  void pollAcknowledged() override;
  sys::SysResult sendFramed(const iovec* iov, int n) override;

 private:
  struct Record {
    uint64_t wire_end;   // socket bytes (since the connect) up to the record's last byte
    uint64_t plain_end;  // plaintext bytes (the event sink's wire position) up to its end
  };

  void connectionUp() override;
  void connectionWritable() override;
  void connectionDown(bool was_connected) override;
  void connectionAckTick() override { updateAcks(); }
  void connectionData(const char* data, size_t len) override;

  void handshakeFailed(const std::string& why);
  void startTimer(uint64_t ms);
  void established();
  // Moves ciphertext out of the session and writes what the socket takes: 0, or an errno
  // (not EAGAIN: then it waits for writability).
  int flushCipher();
  void resetSession();

  size_t pipe_bytes_;
  config::TcpOutput cfg_;
  TcpConnection conn_;
  std::shared_ptr<TlsContext> ctx_;
  std::unique_ptr<TlsSession> session_;
  SocketOutBuffer sock_out_;        // ciphertext not yet taken by the socket; sent() = socket position
  uint64_t cipher_total_ = 0;  // ciphertext produced since the connect (socket positions)
  uint64_t plain_total_ = 0;
  std::deque<Record> records_;
  std::string userspace_reason_;  // why this output encrypts in userspace (logged)
  TlsHandshakeFailures failures_;
  bool accepted_ = false;         // the server accepted the session (see above)
  uv_loop_t* loop_;
  sys::UvHandle<uv_timer_t> handshake_timer_;
};

}  // namespace logsplice::outputs
