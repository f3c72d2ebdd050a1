#pragma once

// Test certificates made with the OpenSSL API into a directory: a CA, a server certificate for
// 127.0.0.1 and localhost, a client certificate (mutual TLS), an expired one, and a server
// certificate from another CA. EC P-256 keys: fast to make.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace logsplice::testing {

struct TlsKeyPair {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  TlsKeyPair() = default;
  TlsKeyPair(const TlsKeyPair&) = delete;
  TlsKeyPair& operator=(const TlsKeyPair&) = delete;
  ~TlsKeyPair() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

inline void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn`, signed by `issuer` (self-signed when null); valid from
// `from_s` to `to_s` seconds from now; `san` like "IP:127.0.0.1,DNS:localhost".
inline void makeCert(TlsKeyPair& out, const std::string& cn, const TlsKeyPair* issuer, bool ca,
                     const std::string& san, long from_s = -3600, long to_s = 86400) {
  out.key = EVP_EC_gen("P-256");
  REQUIRE(out.key != nullptr);
  out.cert = X509_new();
  X509_set_version(out.cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(out.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(out.cert), from_s);
  X509_gmtime_adj(X509_getm_notAfter(out.cert), to_s);
  X509_set_pubkey(out.cert, out.key);
  X509_NAME* name = X509_get_subject_name(out.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert : out.cert;
  X509_set_issuer_name(out.cert, X509_get_subject_name(issuer_cert));
  if (ca) {
    addExtension(out.cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(out.cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExtension(out.cert, issuer_cert, NID_basic_constraints, "CA:FALSE");
  }
  addExtension(out.cert, issuer_cert, NID_subject_key_identifier, "hash");
  if (!san.empty()) addExtension(out.cert, issuer_cert, NID_subject_alt_name, san.c_str());
  REQUIRE(X509_sign(out.cert, issuer ? issuer->key : out.key, EVP_sha256()) > 0);
}

inline void writePem(const TlsKeyPair& kp, const std::string& cert_path,
                     const std::string& key_path) {
  FILE* f = std::fopen(cert_path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_X509(f, kp.cert);
  std::fclose(f);
  if (key_path.empty()) return;
  f = std::fopen(key_path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_PrivateKey(f, kp.key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// Files in `dir`: ca.pem; server.pem/server.key (127.0.0.1, localhost); client.pem/client.key;
// expired.pem/expired.key; other-ca.pem and other-server.pem/.key (the same names, another CA).
struct TlsTestCerts {
  std::string dir;
  explicit TlsTestCerts(const std::string& d) : dir(d) {
    TlsKeyPair ca, server, client, expired, other_ca, other_server;
    makeCert(ca, "logsplice test CA", nullptr, true, "");
    makeCert(server, "localhost", &ca, false, "IP:127.0.0.1,DNS:localhost");
    makeCert(client, "logsplice-agent", &ca, false, "DNS:logsplice-agent");
    makeCert(expired, "logsplice-agent", &ca, false, "DNS:logsplice-agent", -7200, -3600);
    makeCert(other_ca, "another CA", nullptr, true, "");
    makeCert(other_server, "localhost", &other_ca, false, "IP:127.0.0.1,DNS:localhost");
    writePem(ca, path("ca.pem"), path("ca.key"));
    writePem(server, path("server.pem"), path("server.key"));
    writePem(client, path("client.pem"), path("client.key"));
    writePem(expired, path("expired.pem"), path("expired.key"));
    writePem(other_ca, path("other-ca.pem"), "");
    writePem(other_server, path("other-server.pem"), path("other-server.key"));
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
};

}  // namespace logsplice::testing
