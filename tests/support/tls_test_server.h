#pragma once

// A small TLS collector on 127.0.0.1 for unit tests, driven from the test's own thread: pump()
// (called from a Loop::waitFor predicate) accepts, runs the non-blocking handshake and reads
// what arrived. Optionally requires a client certificate signed by a CA (mutual TLS).

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <string>

#include "tests/support/tcp_test_peer.h"

namespace logsplice::testing {

class TlsTestServer {
 public:
  TlsTestServer(const std::string& cert, const std::string& key,
                const std::string& client_ca = "") {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1);
    if (!client_ca.empty()) {
      REQUIRE(SSL_CTX_load_verify_locations(ctx_, client_ca.c_str(), nullptr) == 1);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    socket_.listen();
  }
  ~TlsTestServer() {
    drop();
    SSL_CTX_free(ctx_);
  }
  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;

  std::string address() const { return socket_.address(); }

  // Accepts, handshakes, reads; returns the plaintext received so far on every connection.
  const std::string& pump() {
    if (!fd_.valid()) {
      fd_ = socket_.accept();
      if (!fd_.valid()) return data;
      ssl_ = SSL_new(ctx_);
      SSL_set_fd(ssl_, fd_.get());
      SSL_set_accept_state(ssl_);
      ++accepted;
    }
    if (!SSL_is_init_finished(ssl_)) {
      ERR_clear_error();
      int rc = SSL_do_handshake(ssl_);
      if (rc != 1) {
        int err = SSL_get_error(ssl_, rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          char buf[256];
          ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
          last_error = buf;
          ++handshake_failures;
          drop();
        }
        return data;
      }
      ++handshakes;
      protocol = SSL_get_version(ssl_);
      cipher = SSL_get_cipher_name(ssl_);
      X509* peer = SSL_get1_peer_certificate(ssl_);
      client_cert = peer != nullptr;
      X509_free(peer);
    }
    char buf[65536];
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        data.append(buf, static_cast<size_t>(n));
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) drop();
      break;
    }
    return data;
  }

  // Closes the current connection at once (a collector restart): what was received and not
  // yet acknowledged by our TCP stack is lost with it, as with a real restart.
  void drop() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    fd_.reset();
  }
  bool connected() const { return ssl_ != nullptr && SSL_is_init_finished(ssl_); }

  std::string data;
  std::string last_error;
  std::string protocol, cipher;
  bool client_cert = false;
  int accepted = 0, handshakes = 0, handshake_failures = 0;

 private:
  SSL_CTX* ctx_ = nullptr;
  TestSocket socket_;
  sys::UniqueFd fd_;
  SSL* ssl_ = nullptr;
};

}  // namespace logsplice::testing
