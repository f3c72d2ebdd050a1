#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "sys/error.h"

namespace logsplice::outputs {

// The OpenSSL client context of one TLS output, built from its `tls:` config: verify mode, CA
// (or the system store), client certificate and key (mutual TLS), minimum version, ciphers.
// Whether kTLS may or must be had is the sink's decision (outputs/ktls.h). Reloadable: reload() builds a new context from the files as they are now and swaps it
// in only when that worked, so a bad new certificate leaves the running one in place (and the
// error says why). A session keeps the context it was made with (OpenSSL counts references).
// Loop thread only.
class TlsContext {
 public:
  // Builds the first context; the error names the file that is wrong.
  static sys::Result<std::shared_ptr<TlsContext>> create(std::string output,
                                                         const config::TlsConfig& cfg);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Re-reads the certificate, key and CA files; on error the old context stays in use.
  sys::Error reload();
  SSL_CTX* get() const { return ctx_; }
  const config::TlsConfig& config() const { return cfg_; }

 private:
  TlsContext(std::string output, const config::TlsConfig& cfg)
      : output_(std::move(output)), cfg_(cfg) {}
  sys::Result<SSL_CTX*> build() const;

  std::string output_;
  config::TlsConfig cfg_;
  SSL_CTX* ctx_ = nullptr;
};

// Whether this kernel offers the TLS upper-layer protocol (kTLS): `tls` listed in
// /proc/sys/net/ipv4/tcp_available_ulp, or its module installed (sys/tcp_ulp.h).
bool kernelHasKtls();

// The reason OpenSSL gave last (its error queue is cleared), or `fallback` when none.
std::string opensslError(const char* fallback);

}  // namespace logsplice::outputs
