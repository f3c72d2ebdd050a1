#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>

namespace logsplice::outputs {

// OpenSSL on a non-blocking socket it reads and writes itself (SSL_set_fd), for a peer that
// moves control messages and payload through one ordered plaintext queue: the mirror protocol's
// agent (outputs/mirror_sink.h) and collector (agent/collect/collect_connection.h). The caller
// owns the poll: after kWant it waits for writability when wantsWrite(), else readability.
// OpenSSL may hold plaintext of a record already read from the socket (pending()): a caller
// that stops reading early must come back without waiting for the socket. Not thread-safe.
class SocketTls {
 public:
  enum class Io { kOk, kWant, kClosed, kFailed };

  // Takes `ssl` (already given its descriptor and its connect or accept state).
  explicit SocketTls(SSL* ssl);
  ~SocketTls();
  SocketTls(const SocketTls&) = delete;
  SocketTls& operator=(const SocketTls&) = delete;

  // Drives the handshake: kOk once established.
  Io handshake();
  bool established() const { return established_; }
  // Writes the head of `out` in records of at most 16 KiB and erases what went out, until
  // `out` is empty (kOk) or the socket is full (kWant). A retried write passes the same bytes
  // and length, as OpenSSL requires: `out` may grow at its end meanwhile, never at its head.
  Io send(std::string& out);
  // Reads up to `len` plaintext bytes into `buf` (*n of them on kOk).
  Io recv(char* buf, size_t len, size_t* n);
  size_t pending() const { return static_cast<size_t>(SSL_pending(ssl_)); }
  bool wantsWrite() const { return want_write_; }
  // OpenSSL's reason for the last kFailed (and the certificate verify result, if any).
  const std::string& failure() const { return failure_; }
  std::string negotiated() const;
  SSL* ssl() const { return ssl_; }

 private:
  Io classify(int rc, const char* what);

  SSL* ssl_;
  bool established_ = false;
  bool want_write_ = false;
  size_t retry_len_ = 0;  // the length of a write to retry; 0 = none
  std::string failure_;
};

}  // namespace logsplice::outputs
