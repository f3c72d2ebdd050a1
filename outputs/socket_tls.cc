#include "outputs/socket_tls.h"

#include <openssl/err.h>

#include <algorithm>

#include "outputs/ktls.h"
#include "outputs/tls_session.h"

namespace logsplice::outputs {

SocketTls::SocketTls(SSL* ssl) : ssl_(ssl) {
  // The queue the caller writes from may be reallocated between a write and its retry.
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

SocketTls::~SocketTls() {
  SSL_free(ssl_);
}

SocketTls::Io SocketTls::classify(int rc, const char* what) {
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    want_write_ = err == SSL_ERROR_WANT_WRITE;
    return Io::kWant;
  }
  if (err == SSL_ERROR_ZERO_RETURN) {
    failure_ = "the peer closed the TLS session";
    return Io::kClosed;
  }
  failure_ = sslFailure(ssl_, rc, what);
  return Io::kFailed;
}

SocketTls::Io SocketTls::handshake() {
  if (established_) return Io::kOk;
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established_ = true;
    return Io::kOk;
  }
  return classify(rc, "TLS handshake failed");
}

SocketTls::Io SocketTls::send(std::string& out) {
  while (!out.empty()) {
    const size_t len =
        retry_len_ > 0 ? retry_len_ : std::min<size_t>(out.size(), ktls::kRecordPlain);
    ERR_clear_error();
    int rc = SSL_write(ssl_, out.data(), static_cast<int>(len));
    if (rc <= 0) {
      Io io = classify(rc, "TLS write failed");
      if (io == Io::kWant) retry_len_ = len;
      return io;
    }
    retry_len_ = 0;
    out.erase(0, static_cast<size_t>(rc));
  }
  return Io::kOk;
}

SocketTls::Io SocketTls::recv(char* buf, size_t len, size_t* n) {
  ERR_clear_error();
  int rc = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(len, 1 << 30)));
  if (rc > 0) {
    *n = static_cast<size_t>(rc);
    return Io::kOk;
  }
  return classify(rc, "TLS read failed");
}

std::string SocketTls::negotiated() const {
  const char* cipher = SSL_get_cipher_name(ssl_);
  return std::string(SSL_get_version(ssl_)) + " " + (cipher ? cipher : "");
}

}  // namespace logsplice::outputs
