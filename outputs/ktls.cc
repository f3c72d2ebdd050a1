#include "outputs/ktls.h"

#include <algorithm>

#include "sys/tcp_ulp.h"

namespace logsplice::outputs::ktls {

Plan plan(config::KtlsMode mode, bool raw_format, bool ulp_available) {
  Plan p;
  if (mode == config::KtlsMode::kOff) {
    p.why_userspace = "ktls: off";
    return p;
  }
  if (!raw_format) {
    // Framed events are built in the agent's memory anyway: they are encrypted there.
    if (mode == config::KtlsMode::kRequire) {
      p.refusal =
          "tls.ktls is 'require', but kernel TLS is for format: raw only (syslog and "
          "json events are framed and encrypted in userspace); set ktls: auto";
    }
    p.why_userspace = "framed events are encrypted in userspace";
    return p;
  }
  if (!ulp_available) {
    if (mode == config::KtlsMode::kRequire) {
      p.refusal = std::string(
                      "tls.ktls is 'require' but this kernel offers no kTLS ('tls' is "
                      "not in ") +
                  sys::kTcpAvailableUlpPath + "; try `modprobe tls`, or set ktls: auto)";
    }
    p.why_userspace = std::string("this kernel offers no kTLS ('tls' is not in ") +
                      sys::kTcpAvailableUlpPath + ")";
    return p;
  }
  p.try_kernel = true;
  return p;
}

Outcome afterHandshake(config::KtlsMode mode, bool bio_ktls_send) {
  if (bio_ktls_send) return Outcome::kKernel;
  return mode == config::KtlsMode::kRequire ? Outcome::kRefuse : Outcome::kUserspace;
}

std::string refusalAfterHandshake(const std::string& negotiated) {
  return "tls.ktls is 'require' but OpenSSL kept the send side in userspace after the handshake "
         "(" +
         negotiated +
         "): the kernel's kTLS cannot do this cipher, or the tls module cannot be loaded by this "
         "user; allow a cipher the kernel has (AES-GCM), load the module, or set ktls: auto";
}

void request(SSL* ssl) {
  SSL_set_options(ssl, SSL_OP_ENABLE_KTLS);
}

bool sendActive(SSL* ssl) {
  BIO* wbio = SSL_get_wbio(ssl);
  return wbio != nullptr && BIO_get_ktls_send(wbio) != 0;
}

uint64_t AckBound::poll(uint64_t outq) {
  const bool empty = outq == 0;
  uint64_t bound = 0;
  if (empty && empty_at_last_poll_ && !sent_since_poll_) {
    bound = sent_;
  } else if (sent_ > outq + kInFlightSlack) {
    bound = sent_ - outq - kInFlightSlack;
  }
  empty_at_last_poll_ = empty;
  sent_since_poll_ = false;
  acked_ = std::max(acked_, bound);
  return acked_;
}

}  // namespace logsplice::outputs::ktls
