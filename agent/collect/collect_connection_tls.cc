// The TLS side of a collector connection (collect.tls): the handshake, and reading the agent's
// stream out of OpenSSL, which decrypts it in our memory. See collect_connection.h.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/collect/collect_connection.h"
#include "agent/collect/collect_server.h"

namespace logsplice::agent::collect {

void CollectConnection::stepHandshake() {
  switch (tls_->handshake()) {
    case outputs::SocketTls::Io::kOk:
      spdlog::debug("collect: {}: TLS established ({})", peer_, tls_->negotiated());
      return;
    case outputs::SocketTls::Io::kWant:
      tls_wants_write_ = tls_->wantsWrite();
      updatePoll();
      return;
    default:
      // No certificate, one from another CA, or not TLS at all: refused with OpenSSL's reason.
      spdlog::warn("collect: {}: {}; closing the connection", peer_, tls_->failure());
      server_.drop(this);
      return;
  }
}

ssize_t CollectConnection::readSome(char* buf, size_t len) {
  if (!tls_) return ::recv(sock_.get(), buf, len, MSG_DONTWAIT);
  size_t n = 0;
  switch (tls_->recv(buf, len, &n)) {
    case outputs::SocketTls::Io::kOk:
      return static_cast<ssize_t>(n);
    case outputs::SocketTls::Io::kWant:
      tls_wants_write_ = tls_->wantsWrite();
      if (tls_wants_write_) updatePoll();
      errno = EAGAIN;
      return -1;
    case outputs::SocketTls::Io::kClosed:
      return 0;
    case outputs::SocketTls::Io::kFailed:
      break;
  }
  errno = EPROTO;
  return -1;
}

std::string CollectConnection::readError() const {
  if (tls_ && errno == EPROTO && !tls_->failure().empty()) return tls_->failure();
  return std::strerror(errno);
}

ssize_t CollectConnection::readPayloadTls() {
  // Only the frame's payload enters the pipe under TLS (its headers are read with readSome).
  size_t want = static_cast<size_t>(std::min<uint64_t>(data_left_ - in_pipe_, tls_buf_.size()));
  ssize_t n = readSome(tls_buf_.data(), want);
  if (n <= 0) return n;
  // The pipe is empty here (consumePipe ran first) and holds far more than one chunk.
  size_t done = 0;
  while (done < static_cast<size_t>(n)) {
    ssize_t w = ::write(pipe_.writeFd(), tls_buf_.data() + done, static_cast<size_t>(n) - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      errno = w < 0 ? errno : EIO;
      return -1;
    }
    done += static_cast<size_t>(w);
  }
  server_.copied(static_cast<uint64_t>(n));
  in_pipe_ += static_cast<uint64_t>(n);
  return n;
}

}  // namespace logsplice::agent::collect
