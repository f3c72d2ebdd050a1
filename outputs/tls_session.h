#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace logsplice::outputs {

// Sets what a client checks and sends on `ssl`: `host` (the address's host part) is verified
// (SSL_set1_host, or the IP address) unless `server_name` overrides it; SNI is sent for a name,
// never for an IP address. Shared by the memory-BIO session below and kernel TLS.
void configureClientSsl(SSL* ssl, const std::string& host, const std::string& server_name,
                        bool verify);
// "<what>: <OpenSSL's reason>[ (certificate verify: <result>)]" for a failed call returning rc.
std::string sslFailure(SSL* ssl, int rc, const char* what);

// One TLS client session over memory BIOs: the caller moves the bytes. What the peer sent goes
// in with feed(); the records OpenSSL produces (handshake, application data, alerts) come out
// with takeCiphertext() and are written to the socket by the caller, so it knows exactly how
// many wire bytes each SSL_write became (delivery accounting maps acknowledged socket bytes back
// to plaintext) and keeps the socket under its own poll. No I/O, no loop: unit-testable alone.
class TlsSession {
 public:
  enum class Step { kDone, kWant, kFailed };

  // `host` is the address's host part: verified (SSL_set1_host, or the IP address) unless
  // `server_name` overrides it; SNI is sent for a name, never for an IP address.
  TlsSession(SSL_CTX* ctx, const std::string& host, const std::string& server_name, bool verify);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Drives the handshake as far as it can go with what was fed.
  Step handshake();
  bool established() const { return established_; }
  // Why the handshake or the session failed: OpenSSL's reason and, for a certificate the
  // peer presented that did not verify, the verify result text.
  const std::string& failure() const { return failure_; }

  void feed(const char* data, size_t len);
  // Reads what the peer sent after the handshake (TLS 1.3 tickets, a key update, an alert);
  // application data is dropped. False when the peer closed (close_notify) or the session failed.
  bool processIncoming();
  // Like processIncoming(), but appends the application data to `out` (at most `max` bytes
  // per call: the rest stays buffered in the session until the next call).
  bool readIncoming(std::string& out, size_t max);
  // Encrypts `len` plaintext bytes (all of them: the write BIO is memory) into records of at
  // most 16 KiB; false when the session failed.
  bool write(const char* data, size_t len);
  // Queues a close_notify (the collector learns the stream ended cleanly, not truncated).
  void shutdown();
  // Moves the ciphertext waiting in the write BIO to the end of `out`; returns the bytes moved.
  size_t takeCiphertext(std::string& out);

  // TLS 1.3: the client finishes its handshake before the server has checked the client's
  // certificate, so "established" does not yet mean "accepted".
  bool tls13() const { return SSL_version(ssl_) == TLS1_3_VERSION; }
  std::string protocol() const;
  std::string cipher() const;

 private:
  void setFailure(int rc, const char* what);

  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  bool established_ = false;
  std::string failure_;
};

}  // namespace logsplice::outputs
