#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/collect/mirror_store.h"
#include "outputs/mirror_protocol.h"
#include "outputs/socket_tls.h"
#include "sys/pipe.h"
#include "sys/unique_fd.h"
#include "sys/uv_handle.h"

namespace logsplice::agent::collect {

class CollectServer;

// One agent's connection to the collector: a state machine over the socket (docs/protocol.md).
// On plain TCP the socket is spliced into the connection's pipe in large reads (up to the
// pipe's capacity, across message boundaries); headers and control bodies are then read out of
// the pipe into bounded buffers (the header first: its caps are checked before its body is
// taken), and a DATA frame's payload is spliced from the pipe into the mirror file at the
// stated offset: it never enters our memory. Bytes below the mirror's written end are a replay
// and go to /dev/null; a frame past it is a gap (a protocol error). Any protocol error closes
// this connection only, with a logged reason. Disk full pauses it (no reading, no acks) and
// retries. With collect.tls the socket carries TLS, terminated here in userspace (OpenSSL reads
// the socket, collect_connection_tls.cc): headers and bodies are read out of OpenSSL, the
// payload is decrypted into memory and goes from there into the same pipe and mirror path
// (counted in the server's copied bytes); the pipe then holds payload only.
// Loop thread only; the server owns it.
class CollectConnection {
 public:
  CollectConnection(CollectServer& server, uv_loop_t* loop, sys::UniqueFd sock, std::string peer,
                    uint64_t id);
  ~CollectConnection();
  CollectConnection(const CollectConnection&) = delete;
  CollectConnection& operator=(const CollectConnection&) = delete;

  sys::Error start();
  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  const std::string& host() const { return host_; }
  bool authenticated() const { return phase_ == Phase::kReady; }
  uint64_t lastActivityMs() const { return last_activity_ms_; }
  bool midMessage() const { return have_ > 0 || data_left_ > 0 || body_need_ > 0; }
  size_t streams() const { return streams_.size(); }
  // Disk full: waiting for a write to succeed (not the agent's stall).
  bool paused() const { return paused_; }

  // Sends an ERROR with `reason`, logs it, and asks the server to drop this connection.
  void abort(outputs::mirror::ErrorCode code, const std::string& reason);
  // Stops reading and writing and gives its streams back (the server drops it).
  void shutdown();
  // Queues ACKs for the streams of `f` this connection has open.
  void synced(const MirrorFile& f);

 private:
  enum class Phase { kHello, kReady, kClosing };
  struct StreamRef {
    MirrorFile* file = nullptr;
    uint64_t acked = 0;
  };

  void onPoll(int status, int events);
  // Reads up to `len` bytes of the agent's stream (plaintext under TLS): > 0 bytes, 0 when
  // the agent closed, -1 with errno (EAGAIN: nothing now; EPROTO: TLS failed, see tls_).
  ssize_t readSome(char* buf, size_t len);
  std::string readError() const;
  // TLS: moves up to 64 KiB of the frame's payload into the pipe; like readSome.
  ssize_t readPayloadTls();
  void stepHandshake();
  void readLoop();
  // Handles what the pipe holds: payload to the mirror (or /dev/null for a replay), header and
  // control-body bytes to their buffers and on to handleHeader/handleMessage. False when it
  // cannot go on now (disk full: paused; or the connection was aborted).
  bool consumePipe();
  // No room for the payload (`err` ENOSPC or EDQUOT, or 0: under limits.min_free): stops
  // reading and retries the write every second.
  void pauseForSpace(int err);
  // Moves the current frame's bytes at the head of the pipe out; false as consumePipe.
  bool writePayload();
  // `n` header bytes read in place at header_ + have_, or `n` bytes of the control body at src.
  void takeControl(const char* src, size_t n);
  void handleHeader();
  void handleMessage();
  void handleHello();
  void handleOpen();
  void handleData();
  void send(const std::string& msg);
  void flushOut();
  void updatePoll();
  void releaseAll();

  CollectServer& server_;
  uv_loop_t* loop_;
  std::string peer_;
  uint64_t id_;
  Phase phase_ = Phase::kHello;
  std::string host_;
  std::string instance_;
  uint64_t last_activity_ms_ = 0;
  // The message being read.
  char header_[outputs::mirror::kHeaderBytes];
  size_t have_ = 0;
  outputs::mirror::Header cur_;
  std::string body_;
  size_t body_need_ = 0;
  // The DATA frame being moved.
  uint64_t data_left_ = 0;  // payload bytes not yet out of the pipe (in it or still to come)
  uint64_t skip_left_ = 0;  // of those, this many (the first) are a replay
  uint64_t in_pipe_ = 0;    // bytes in the pipe not yet handled (any message's, plain TCP)
  uint64_t write_off_ = 0;  // the mirror offset of the next byte written
  MirrorFile* data_file_ = nullptr;
  bool paused_ = false;  // disk full: waiting for the retry timer
  std::map<uint32_t, StreamRef> streams_;
  std::string out_;
  std::unique_ptr<outputs::SocketTls> tls_;  // collect.tls
  bool tls_wants_write_ = false;             // a TLS call waits for writability
  std::vector<char> tls_buf_;                // TLS: decrypted payload on its way to the pipe
  sys::Pipe pipe_;
  sys::UniqueFd sock_;
  // After sock_: closed (poll stopped) before the socket.
  sys::UvHandle<uv_poll_t> poll_;
  sys::UvHandle<uv_timer_t> retry_;
  // TLS: OpenSSL holds decrypted bytes the socket's poll does not announce; read on soon.
  sys::UvHandle<uv_timer_t> more_;
  int poll_events_ = 0;
};

}  // namespace logsplice::agent::collect
