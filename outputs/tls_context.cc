#include "outputs/tls_context.h"

#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include "config/tls_keys.h"
#include "sys/tcp_ulp.h"

namespace logsplice::outputs {

std::string opensslError(const char* fallback) {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool kernelHasKtls() {
  return sys::tcpUlpAvailable("tls");
}

sys::Result<std::shared_ptr<TlsContext>> TlsContext::create(std::string output,
                                                            const config::TlsConfig& cfg) {
  std::shared_ptr<TlsContext> c(new TlsContext(std::move(output), cfg));
  auto built = c->build();
  if (!built.ok()) return built.error();
  c->ctx_ = built.value();
  if (!cfg.verify) {
    spdlog::warn("output '{}': tls.verify is false: the collector's certificate is NOT checked",
                 c->output_);
  }
  return c;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

sys::Result<SSL_CTX*> TlsContext::build() const {
  auto fail = [&](std::string why) -> sys::Result<SSL_CTX*> {
    return sys::Error::invalidConfig("output '" + output_ + "': tls: " + why);
  };
  // The same checks as `check` (expiry, key/certificate match), with the files as they are now.
  if (auto problem = config::tlsFilesProblem(cfg_); !problem.empty()) return fail(problem);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return fail(opensslError("SSL_CTX_new failed"));
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> owned(ctx, SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx, cfg_.min_version);
  SSL_CTX_set_verify(ctx, cfg_.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (cfg_.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return fail("cannot load the system CA store: " + opensslError("unknown error"));
    }
  } else if (SSL_CTX_load_verify_locations(ctx, cfg_.ca_file.c_str(), nullptr) != 1) {
    return fail("cannot load CA file '" + cfg_.ca_file + "': " + opensslError("unknown error"));
  }
  if (!cfg_.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg_.cert_file.c_str()) != 1) {
      return fail("cannot load certificate '" + cfg_.cert_file +
                  "': " + opensslError("unknown error"));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg_.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("cannot load key '" + cfg_.key_file + "': " + opensslError("unknown error"));
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return fail("key '" + cfg_.key_file + "' does not match certificate '" + cfg_.cert_file +
                  "'");
    }
  }
  if (!cfg_.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, cfg_.ciphers.c_str()) != 1) {
    return fail("no usable cipher in '" + cfg_.ciphers + "'");
  }
  if (!cfg_.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, cfg_.ciphersuites.c_str()) != 1) {
    return fail("no usable cipher suite in '" + cfg_.ciphersuites + "'");
  }
  ERR_clear_error();
  return owned.release();
}

sys::Error TlsContext::reload() {
  auto built = build();
  if (!built.ok()) {
    spdlog::error("output '{}': TLS reload failed, keeping the running certificates: {}", output_,
                  built.error().toString());
    return built.error();
  }
  SSL_CTX_free(ctx_);
  ctx_ = built.value();
  spdlog::info("output '{}': TLS certificates reloaded", output_);
  return sys::Error::ok();
}

}  // namespace logsplice::outputs
