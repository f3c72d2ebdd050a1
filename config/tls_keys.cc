#include "config/tls_keys.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string_view>

#include "sys/tcp_ulp.h"

namespace logsplice::config {
namespace {

constexpr std::string_view kTlsKeys[] = {"ca_file",     "cert_file",    "key_file",
                                         "server_name", "verify",       "min_version",
                                         "ciphers",     "ciphersuites", "ktls"};

Mark markOf(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.is_null() || m.line < 0) return Mark{};
  return Mark{m.line + 1, m.column + 1};
}

// The reason OpenSSL gave last (and clears its queue), or `fallback`.
std::string opensslReason(const char* fallback) {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

std::string openProblem(const std::string& path, File& out) {
  out.reset(std::fopen(path.c_str(), "re"));
  if (!out) return "cannot read '" + path + "': " + std::strerror(errno);
  return {};
}

std::string certProblem(const std::string& path, X509** cert_out) {
  File f;
  if (auto p = openProblem(path, f); !p.empty()) return p;
  X509* cert = PEM_read_X509(f.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr) {
    return "'" + path + "' holds no PEM certificate (" + opensslReason("no certificate") + ")";
  }
  std::string problem;
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    problem = "certificate '" + path + "' has expired";
  } else if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
    problem = "certificate '" + path + "' is not valid yet";
  }
  if (!problem.empty() || cert_out == nullptr) {
    X509_free(cert);
  } else {
    *cert_out = cert;
  }
  return problem;
}

std::string caProblem(const std::string& path) {
  File f;
  if (auto p = openProblem(path, f); !p.empty()) return p;
  int count = 0;
  while (X509* cert = PEM_read_X509(f.get(), nullptr, nullptr, nullptr)) {
    ++count;
    X509_free(cert);
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (count == 0) return "CA file '" + path + "' holds no PEM certificate";
  return {};
}

}  // namespace

std::string resolveTlsPath(const std::string& config_file, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  size_t slash = config_file.rfind('/');
  if (slash == std::string::npos) return path;  // the config is in the working directory
  return config_file.substr(0, slash + 1) + path;
}

std::string tlsFilesProblem(const TlsConfig& tls) {
  if (!tls.ca_file.empty()) {
    if (auto p = caProblem(tls.ca_file); !p.empty()) return p;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return "'cert_file' and 'key_file' go together (mutual TLS)";
  }
  if (tls.cert_file.empty()) return {};
  X509* cert = nullptr;
  if (auto p = certProblem(tls.cert_file, &cert); !p.empty()) return p;
  std::unique_ptr<X509, decltype(&X509_free)> cert_owner(cert, X509_free);
  File f;
  if (auto p = openProblem(tls.key_file, f); !p.empty()) return p;
  EVP_PKEY* key = PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return "'" + tls.key_file + "' holds no PEM private key (" + opensslReason("no key") + ")";
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_owner(key, EVP_PKEY_free);
  if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    return "key '" + tls.key_file + "' does not match certificate '" + tls.cert_file + "'";
  }
  return {};
}

void parseTlsKeys(YamlReader& yaml, const YAML::Node& node, TlsConfig& tls) {
  tls.mark = markOf(node);
  auto error = [&](const YAML::Node& at, std::string message) {
    yaml.error(markOf(at), std::move(message));
  };
  if (!node.IsMap()) {
    error(node, "'tls' must be a map");
    return;
  }
  std::set<std::string> seen;
  auto scalar = [&](const YAML::Node& key, const YAML::Node& value) -> bool {
    if (value.IsScalar() && !value.Scalar().empty()) return true;
    error(value.IsNull() ? key : value, "'tls." + key.Scalar() + "' must be a non-empty string");
    return false;
  };
  // Each file key: its value mark, for errors about the file itself.
  std::vector<std::pair<std::string, YAML::Node>> file_marks;
  for (const auto& kv : node) {
    const YAML::Node& key = kv.first;
    const YAML::Node& value = kv.second;
    if (!key.IsScalar()) {
      error(key, "keys must be plain strings in 'tls'");
      continue;
    }
    const std::string name = key.Scalar();
    bool known = false;
    for (std::string_view k : kTlsKeys) known = known || k == name;
    if (!known) {
      std::string list;
      for (std::string_view k : kTlsKeys) list += (list.empty() ? "" : ", ") + std::string(k);
      error(key, "unknown key '" + name + "' in 'tls' (expected one of: " + list + ")");
      continue;
    }
    if (!seen.insert(name).second) {
      error(key, "duplicate key '" + name + "' in 'tls'");
      continue;
    }
    if (!scalar(key, value)) continue;
    const std::string text = value.Scalar();
    if (name == "ca_file" || name == "cert_file" || name == "key_file") {
      (name == "ca_file"     ? tls.ca_file
       : name == "cert_file" ? tls.cert_file
                             : tls.key_file) = resolveTlsPath(yaml.file(), text);
      file_marks.emplace_back(name, value);
    } else if (name == "server_name") {
      tls.server_name = text;
    } else if (name == "verify") {
      if (text == "true") {
        tls.verify = true;
      } else if (text == "false") {
        tls.verify = false;
      } else {
        error(value, "'tls.verify' must be true or false, not '" + text + "'");
      }
    } else if (name == "min_version") {
      if (text == "1.2") {
        tls.min_version = TLS1_2_VERSION;
      } else if (text == "1.3") {
        tls.min_version = TLS1_3_VERSION;
      } else {
        error(value, "'tls.min_version' must be \"1.2\" or \"1.3\", not '" + text + "'");
      }
    } else if (name == "ciphers" || name == "ciphersuites") {
      // Checked against this OpenSSL now, so a typo is not a handshake failure later.
      std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                            SSL_CTX_free);
      int ok = name == "ciphers" ? SSL_CTX_set_cipher_list(ctx.get(), text.c_str())
                                 : SSL_CTX_set_ciphersuites(ctx.get(), text.c_str());
      ERR_clear_error();
      if (ok != 1) {
        error(value, "'tls." + name + "': no usable cipher in '" + text + "'");
      } else {
        (name == "ciphers" ? tls.ciphers : tls.ciphersuites) = text;
      }
    } else if (name == "ktls") {
      if (text == "auto") {
        tls.ktls = KtlsMode::kAuto;
      } else if (text == "require") {
        tls.ktls = KtlsMode::kRequire;
        // Known now, so `check` says it instead of the first start.
        if (!sys::tcpUlpAvailable("tls")) {
          error(key, "'tls.ktls' is 'require' but this kernel offers no kTLS ('tls' is not in " +
                         std::string(sys::kTcpAvailableUlpPath) +
                         "; `modprobe tls`, or set ktls: auto to encrypt in userspace)");
        }
      } else if (text == "off") {
        tls.ktls = KtlsMode::kOff;
      } else {
        error(value, "'tls.ktls' must be auto, require or off, not '" + text + "'");
      }
    }
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    error(node, "'tls.cert_file' and 'tls.key_file' go together (mutual TLS)");
    return;
  }
  // The files, each reported at the key that names it.
  for (const auto& [name, value] : file_marks) {
    TlsConfig one;
    if (name == "ca_file") one.ca_file = tls.ca_file;
    if (name == "cert_file") {
      if (auto p = certProblem(tls.cert_file, nullptr); !p.empty()) error(value, p);
      continue;
    }
    if (name == "key_file") {
      // A key is checked with its certificate (both readable, and they match).
      if (certProblem(tls.cert_file, nullptr).empty()) {
        one.cert_file = tls.cert_file;
        one.key_file = tls.key_file;
      } else {
        continue;
      }
    }
    if (auto p = tlsFilesProblem(one); !p.empty()) error(value, p);
  }
}

}  // namespace logsplice::config
