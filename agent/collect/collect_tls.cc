#include "agent/collect/collect_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "outputs/tls_context.h"

namespace logsplice::agent::collect {

sys::Result<SslCtx> buildCollectTlsContext(const config::CollectTls& cfg) {
  ERR_clear_error();
  SslCtx ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return sys::Error::io(outputs::opensslError("SSL_CTX_new failed"));
  auto failed = [](const std::string& what) {
    return sys::Error::invalidConfig("collect.tls: " + what + ": " +
                                     outputs::opensslError("rejected by OpenSSL"));
  };
  SSL_CTX_set_min_proto_version(ctx.get(), cfg.min_version);
  // An agent that goes without close_notify is a plain close: the framing already tells a
  // close between messages from one in the middle of a frame.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cfg.cert_file.c_str()) != 1) {
    return failed("certificate '" + cfg.cert_file + "'");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), cfg.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return failed("key '" + cfg.key_file + "'");
  }
  if (!cfg.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), cfg.ca_file.c_str(), nullptr) != 1) {
      return failed("CA file '" + cfg.ca_file + "'");
    }
    // Tells clients which CA to present a certificate from.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  ERR_clear_error();
  return ctx;
}

bool certificateNamesHost(SSL* ssl, const std::string& host) {
  if (SSL_get_verify_result(ssl) != X509_V_OK) return false;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return false;
  // ALWAYS_CHECK_SUBJECT: the CN counts even when the certificate lists DNS names.
  int rc = X509_check_host(cert, host.data(), host.size(),
                           X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS,
                           nullptr);
  ERR_clear_error();
  return rc == 1;
}

}  // namespace logsplice::agent::collect
