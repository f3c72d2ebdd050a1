#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "outputs/tls_handshake_failures.h"
#include "outputs/ktls.h"
#include "outputs/stream_sink.h"
#include "outputs/tcp_connection.h"
#include "outputs/tls_context.h"

namespace logsplice::outputs {

// A raw (`format: raw`) output over TLS: the file's bytes as they are, encrypted by the kernel
// where it can (kTLS), by OpenSSL otherwise. makeSink gives every raw output with `tls:` one.
//
// After the TCP connect, OpenSSL runs the handshake on the socket itself (SSL_set_fd),
// non-blocking on the loop: the connection hands readability to this sink instead of reading.
// Where ktls::plan says to try (the kernel offers the `tls` ULP, ktls is not off), the session
// asks for kTLS (SSL_OP_ENABLE_KTLS) and, after the handshake, the write BIO says whether the
// send side went into the kernel (outputs/ktls.h: OpenSSL falls back silently, so it is asked):
//  - kernel TLS: the pipe is spliced into the socket as by TcpSink, and the kernel encrypts.
//    Nothing passes through the agent's memory (bytes_copied stays 0). Delivery is the lower
//    bound of ktls::AckBound (plaintext sent minus SIOCOUTQ and a slack), because the kernel,
//    not the agent, decides where records end.
//  - userspace TLS (no kTLS here, `ktls: off`, or OpenSSL kept the send side under `auto`):
//    the pipe is read (counted in bytes_copied) and SSL_write'n in full 16 KiB records, the
//    practical userspace limit; each record's end on the wire is known (the socket BIO counts
//    what it wrote), so a record is delivered once SIOCOUTQ shows its last byte acknowledged.
//    Flow does not wait for acknowledgements (unlike per-line event accounting): the socket's
//    buffer is the only window, as for plain TCP.
//  - `ktls: require` and OpenSSL kept the send side: the connection is dropped with the reason
//    and retried with the backoff; the file stays the buffer.
// A resend after a broken connection starts at the line start before the first unacknowledged
// byte (the router's rewind), as for plain TCP.
// A handshake failure is logged with OpenSSL's reason, counted, and retried with the backoff.
// Under TLS 1.3 nothing is reported delivered until the server showed it accepted the session
// (a record after the handshake, or no alert within a short wait), as in TlsEventSink.
// Loop thread only; the loop and the listener must outlive it.
class TlsStreamSink : public StreamSink, private TcpConnection::Handler {
 public:
  enum class Path { kHandshake, kKernel, kUserspace };

  TlsStreamSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                SinkListener& listener, size_t pipe_bytes,
                sys::SysCalls& sys = sys::SysCalls::real());
  ~TlsStreamSink() override;

  SinkState state() const override;
  void refreshDelivery() override { updateAcks(); }
  // Builds the TLS context; refuses `ktls: require` where the kernel has no kTLS, saying why.
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  void collectMetrics(sys::MetricWriter& w) const override;
  void updateAcks();
  // SIGHUP: re-reads the certificates (a bad new one keeps the running context).
  sys::Error reloadTls();

  // Replaces what start() would decide from the kernel (tests: ask OpenSSL for kTLS on a kernel
  // without it, to see the sink check the BIO rather than trust the request). Before start().
  void setKtlsPlanForTesting(ktls::Plan plan) { plan_override_ = std::move(plan); }

  Path path() const { return path_; }
  bool ktlsInUse() const { return path_ == Path::kKernel; }
  bool tlsEstablished() const { return ssl_ != nullptr && path_ != Path::kHandshake; }
  std::string negotiated() const;
  uint64_t handshakeFailures() const { return failures_.total(); }
  const std::string& lastHandshakeFailure() const { return failures_.last(); }
  TcpConnection& connection() { return conn_; }

 protected:
  void drain() override;
  bool canDeliver() const override;

 private:
  struct Record {
    uint64_t wire_end;   // socket bytes written on this connection up to the record's end
    uint64_t plain_end;  // stream position of its last plaintext byte + 1
  };

  void connectionUp() override;
  void connectionWritable() override;
  void connectionDown(bool was_connected) override;
  void connectionAckTick() override { updateAcks(); }
  bool connectionReadable() override;

  void stepHandshake();
  void established();
  void handshakeFailed(const std::string& why);
  void readIncoming();
  void drainKernel();
  void drainUserspace();
  void startTimer(uint64_t ms);
  void resetSession();

  size_t pipe_bytes_;
  config::TcpOutput cfg_;
  TcpConnection conn_;
  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_ = nullptr;
  Path path_ = Path::kHandshake;
  std::optional<ktls::Plan> plan_override_;
  ktls::Plan plan_;             // from start(): whether to ask for kTLS at all
  ktls::AckBound acks_;         // kernel path
  std::deque<Record> records_;  // userspace path
  std::vector<char> out_buf_;   // userspace path: plaintext read out of the pipe
  size_t out_len_ = 0;          // valid bytes in out_buf_
  size_t out_off_ = 0;          // bytes of it SSL_write took (a retry passes the same slice)
  TlsHandshakeFailures failures_;
  bool accepted_ = false;
  uv_loop_t* loop_;
  sys::UvHandle<uv_timer_t> handshake_timer_;
};

}  // namespace logsplice::outputs
