#include "outputs/tls_session.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "outputs/tls_context.h"

namespace logsplice::outputs {
namespace {

bool isIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

constexpr size_t kRecordBytes = 16 * 1024;

}  // namespace

TlsSession::TlsSession(SSL_CTX* ctx, const std::string& host, const std::string& server_name,
                       bool verify) {
  ssl_ = SSL_new(ctx);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  // An empty read BIO means "wait for more", not end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  configureClientSsl(ssl_, host, server_name, verify);
}

void configureClientSsl(SSL* ssl, const std::string& host, const std::string& server_name,
                        bool verify) {
  const std::string& name = server_name.empty() ? host : server_name;
  if (!isIpAddress(name)) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (verify) {
    if (isIpAddress(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, name.c_str());
    }
  }
}

std::string sslFailure(SSL* ssl, int rc, const char* what) {
  int err = SSL_get_error(ssl, rc);
  std::string reason =
      opensslError(err == SSL_ERROR_SYSCALL ? "connection closed" : "unknown error");
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    reason += std::string(" (certificate verify: ") + X509_verify_cert_error_string(verify) + ")";
  }
  return std::string(what) + ": " + reason;
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);
}

void TlsSession::setFailure(int rc, const char* what) {
  failure_ = sslFailure(ssl_, rc, what);
}

TlsSession::Step TlsSession::handshake() {
  if (established_) return Step::kDone;
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established_ = true;
    return Step::kDone;
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Step::kWant;
  setFailure(rc, "TLS handshake failed");
  return Step::kFailed;
}

void TlsSession::feed(const char* data, size_t len) {
  BIO_write(rbio_, data, static_cast<int>(len));
}

bool TlsSession::processIncoming() {
  char buf[4096];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) continue;
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
    if (err == SSL_ERROR_ZERO_RETURN) {
      failure_ = "the collector closed the TLS session";
      return false;
    }
    setFailure(n, "TLS error");
    return false;
  }
}

bool TlsSession::readIncoming(std::string& out, size_t max) {
  char buf[4096];
  size_t taken = 0;
  while (taken < max) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, static_cast<int>(std::min(sizeof buf, max - taken)));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      taken += static_cast<size_t>(n);
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
    if (err == SSL_ERROR_ZERO_RETURN) {
      failure_ = "the collector closed the TLS session";
      return false;
    }
    setFailure(n, "TLS error");
    return false;
  }
  return true;
}

bool TlsSession::write(const char* data, size_t len) {
  while (len > 0) {
    size_t n = std::min(len, kRecordBytes);
    ERR_clear_error();
    int rc = SSL_write(ssl_, data, static_cast<int>(n));
    if (rc <= 0) {
      setFailure(rc, "TLS write failed");
      return false;
    }
    data += rc;
    len -= static_cast<size_t>(rc);
  }
  return true;
}

void TlsSession::shutdown() {
  if (!established_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

size_t TlsSession::takeCiphertext(std::string& out) {
  size_t moved = 0;
  while (size_t pending = BIO_ctrl_pending(wbio_)) {
    size_t at = out.size();
    out.resize(at + pending);
    int n = BIO_read(wbio_, out.data() + at, static_cast<int>(pending));
    out.resize(at + static_cast<size_t>(std::max(n, 0)));
    if (n <= 0) break;
    moved += static_cast<size_t>(n);
  }
  return moved;
}

std::string TlsSession::protocol() const {
  return SSL_get_version(ssl_);
}

std::string TlsSession::cipher() const {
  const char* c = SSL_get_cipher_name(ssl_);
  return c ? c : "";
}

}  // namespace logsplice::outputs
