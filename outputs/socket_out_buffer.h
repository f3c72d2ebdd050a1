#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace logsplice::outputs {

// Bytes a sink produced itself (TLS records, RELP frames) and a non-blocking socket has not
// taken yet. The sinks that write through memory (userspace TLS, RELP) hold at most one batch
// here and take no more input while it is not empty, so it is what bounds their memory.
class SocketOutBuffer {
 public:
  // Where new bytes are appended (e.g. by TlsSession::takeCiphertext).
  std::string& tail() { return buf_; }
  bool pending() const { return off_ < buf_.size(); }

  // Sends what the socket takes. Returns 0 when everything left, EAGAIN when the socket is full
  // (the caller waits for writability), or the errno of a failed send.
  int flush(int fd) {
    while (off_ < buf_.size()) {
      ssize_t n = ::send(fd, buf_.data() + off_, buf_.size() - off_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? EAGAIN : errno;
      }
      off_ += static_cast<size_t>(n);
      sent_ += static_cast<uint64_t>(n);
    }
    clear();
    return 0;
  }
  void clear() {
    buf_.clear();
    off_ = 0;
  }
  // Bytes sent since resetSent() (socket positions, as SIOCOUTQ counts them).
  uint64_t sent() const { return sent_; }
  void resetSent() { sent_ = 0; }

 private:
  std::string buf_;
  size_t off_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace logsplice::outputs
