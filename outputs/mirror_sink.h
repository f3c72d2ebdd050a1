#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "config/config.h"
#include "outputs/ktls.h"
#include "outputs/socket_tls.h"
#include "outputs/stream_sink.h"
#include "outputs/tcp_connection.h"
#include "outputs/tls_context.h"
#include "sys/unique_fd.h"
#include "sys/uv_handle.h"

namespace logsplice::outputs {

// `type: logsplice`: ships each source file's bytes unchanged to `logsplice collect`, which
// writes them at their offsets into a mirror of the file (docs/protocol.md). Per file (and
// truncation generation) a stream is opened; the collector answers the length it holds
// durably and the sink skips what it holds (spliced to /dev/null, never sent). Each run of
// bytes leaves as a DATA header (the only bytes copied, counted in bytes_copied) followed by
// the file's bytes spliced from the pipe into the socket. Bytes count as delivered only when
// the collector acknowledges them as durable (ACK after fdatasync), so the checkpoint never
// passes what the mirror holds. Newlines the router adds (split long lines, a final line
// without newline) are not the file's and are dropped: the mirror is the file byte for byte.
// The connection (failover, backoff, keepalive) is a TcpConnection. Its pipe is at least 1 MiB
// whatever agent.pipe_bytes says (fewer, larger frames). Loop thread only.
//
// With `tls:` OpenSSL runs the handshake on the socket (as TlsStreamSink) and HELLO follows it.
// Where the kernel took the send side (kTLS), headers are sent and the payload spliced as
// without TLS, and the kernel encrypts. Otherwise (userspace TLS: no kTLS on this kernel,
// `ktls: off`, or OpenSSL kept it) the payload is read out of the pipe into the same queue as
// the headers (counted in bytes_copied) and SSL_write'n in 16 KiB records. Delivery is still
// the collector's ACK either way, so no wire-to-plaintext accounting is needed.
class MirrorSink : public StreamSink, private TcpConnection::Handler {
 public:
  MirrorSink(uv_loop_t* loop, std::string name, const config::LogspliceOutput& cfg,
             std::string host, SinkListener& listener, size_t pipe_bytes,
             sys::SysCalls& sys = sys::SysCalls::real());

  SinkState state() const override;
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  void collectMetrics(sys::MetricWriter& w) const override;
  TcpConnection& connection() { return conn_; }
  bool sessionUp() const { return session_up_; }
  // SIGHUP: re-reads the certificates (a bad new one keeps the running context).
  sys::Error reloadTls();
  bool ktlsInUse() const { return tls_ && tls_kernel_; }
  uint64_t handshakeFailures() const { return handshake_failures_; }

 protected:
  void drain() override;
  bool canDeliver() const override {
    return conn_.state() == TcpConnection::State::kConnected && session_up_;
  }

 private:
  struct Stream {
    uint32_t id = 0;
    bool open = false;   // OPENED received
    uint64_t acked = 0;  // durable on the collector (OPENED, then ACKs)
    uint64_t held = 0;   // the collector holds or will hold [0, held): acked, plus what we sent
  };
  using Key = std::pair<uint64_t, uint64_t>;  // (file id, generation)

  void connectionUp() override;
  void connectionWritable() override { drain(); }
  void connectionDown(bool was_connected) override;
  void connectionAckTick() override;
  void connectionData(const char* data, size_t len) override;
  bool connectionReadable() override;

  void sendHello();
  // TLS: one handshake step; HELLO follows the handshake.
  void stepHandshake();
  void tlsFailed(std::string why, bool handshake);
  // Userspace TLS: moves up to 64 KiB of the current frame's payload from the pipe into out_.
  bool readPayload();

  // One message from the collector; false when the connection was dropped.
  bool handleMessage(const char* header, const char* body, size_t body_len);
  // Sends what out_ holds; false when the socket is full (or failed: `failed_` set).
  bool flushOut();
  // Drops n registered stream bytes from the head of the pipe (to /dev/null).
  bool discard(uint64_t n);
  // The open stream for a segment; queues an OPEN and returns null when it is not open yet.
  Stream* streamFor(const Segment& seg);
  // The payload of a DATA frame starting `rem` bytes before the end of `first`'s file bytes:
  // runs on into the following segments while they continue the same file, up to max_frame.
  uint64_t frameLength(const Segment* first, uint64_t rem) const;
  // Reports delivery up to what every stream's acknowledgement covers, in stream order.
  void updateDelivery();
  // Closes streams nothing is pending on, once there are many.
  void closeIdleStreams();
  // At the collector's stream limit: closes one stream (not `keep`) whose bytes are all
  // acknowledged. False when there is none yet (the next ACK frees one).
  bool freeStreamSlot(const Key& keep);
  // Queues a CLOSE for a stream and forgets it.
  void closeStream(std::map<Key, Stream>::iterator it);
  void fail(const std::string& why);

  config::LogspliceOutput cfg_;
  std::string host_;
  std::string instance_;
  size_t pipe_bytes_;
  bool session_up_ = false;
  bool failed_ = false;     // the connection was dropped inside the current call
  uint64_t max_frame_ = 0;  // from HELLO_OK
  size_t max_streams_ = 1;  // from HELLO_OK
  uint64_t keepalive_ms_ = 0;
  uint64_t last_send_ms_ = 0;
  uint64_t frame_left_ = 0;  // payload bytes of the DATA frame being sent
  uint32_t next_id_ = 1;
  std::map<Key, Stream> streams_;
  std::map<uint32_t, Key> by_id_;
  std::string out_;  // control messages and headers not yet sent (never inside a frame)
  std::string in_;   // bytes from the collector not yet parsed (bounded)
  sys::UniqueFd dev_null_;
  std::shared_ptr<TlsContext> tls_ctx_;  // with `tls:`
  ktls::Plan plan_;
  std::unique_ptr<SocketTls> tls_;  // this connection's session
  bool tls_kernel_ = false;         // the kernel encrypts what we send
  bool down_explained_ = false;     // this connection was dropped by us, with a logged reason
  uint64_t handshake_started_ms_ = 0;
  uint64_t handshake_failures_ = 0;
  uv_loop_t* loop_;
  TcpConnection conn_;
};

}  // namespace logsplice::outputs
