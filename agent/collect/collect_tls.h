#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "config/collect_keys.h"
#include "sys/error.h"

namespace logsplice::agent::collect {

using SslCtx = std::shared_ptr<SSL_CTX>;

// The collector's server context from collect.tls: its certificate chain and key, the minimum
// version, and with ca_file a client certificate required and verified against that CA (a
// handshake without one, or with one from another CA, fails). The error names the file.
sys::Result<SslCtx> buildCollectTlsContext(const config::CollectTls& cfg);

// Whether the verified client certificate of `ssl` names `host`: its subject CN or one of its
// DNS subject alternative names equals it (compared as DNS names: case-insensitive, no
// wildcards). The authentication of a host without a token (docs/protocol.md).
bool certificateNamesHost(SSL* ssl, const std::string& host);

}  // namespace logsplice::agent::collect
