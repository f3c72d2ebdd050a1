#include "config/collect_keys.h"

#include <yaml-cpp/yaml.h>

#include "config/tls_keys.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string_view>

namespace logsplice::config {
namespace {

constexpr std::string_view kTopKeys[] = {"collect"};
constexpr std::string_view kCollectKeys[] = {"listen",  "dir",       "tokens",   "fsync", "limits",
                                             "metrics", "log_level", "log_file", "tls"};
// Of the `tls:` keys an output takes, those a listening collector uses.
constexpr std::string_view kCollectTlsKeys[] = {"cert_file", "key_file", "ca_file", "min_version"};
constexpr std::string_view kFsyncKeys[] = {"interval", "bytes"};
constexpr std::string_view kLimitKeys[] = {"max_frame", "max_connections", "max_streams",
                                           "idle_timeout", "min_free"};
constexpr std::string_view kMetricsKeys[] = {"listen"};
constexpr std::pair<std::string_view, std::string_view> kLogLevels[] = {
    {"trace", "trace"}, {"debug", "debug"},       {"info", "info"}, {"warn", "warn"},
    {"error", "error"}, {"critical", "critical"}, {"off", "off"}};
constexpr uint64_t kMaxFrameCap = 64ull << 20;  // mirror::kMaxFrameHardCap

bool validHost(const std::string& h) {
  if (h == "*") return true;
  if (h.empty() || h.size() > 253 || h.front() == '.') return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// collect.tls: the output's `tls:` parser (file checks included, file:line:col), then what a
// server needs on top: its own certificate, and no client-only key.
void parseCollectTls(YamlReader& yaml, const Field& field, CollectConfig& c) {
  TlsConfig t;
  parseTlsKeys(yaml, field.value, t);
  if (!field.value.IsMap()) return;  // reported
  for (const auto& kv : field.value) {
    if (!kv.first.IsScalar()) continue;
    const std::string& key = kv.first.Scalar();
    bool ours = false;
    for (std::string_view k : kCollectTlsKeys) ours = ours || k == key;
    if (!ours && key != "server_name" && key != "verify" && key != "ktls" && key != "ciphers" &&
        key != "ciphersuites") {
      continue;  // unknown: reported by parseTlsKeys
    }
    if (!ours) {
      yaml.error(toMark(kv.first.Mark()),
                 "'tls." + key +
                     "' is for outputs; a collector's 'tls' takes cert_file, key_file, ca_file "
                     "and min_version");
    }
  }
  if (t.cert_file.empty() || t.key_file.empty()) {
    if (t.cert_file.empty() == t.key_file.empty()) {  // else reported: they go together
      yaml.error(t.mark, "'collect.tls' needs 'cert_file' and 'key_file' (the collector's own)");
    }
    return;
  }
  CollectTls& ct = c.tls.emplace();
  ct.mark = t.mark;
  ct.cert_file = t.cert_file;
  ct.key_file = t.key_file;
  ct.ca_file = t.ca_file;
  ct.min_version = t.min_version;
}

void parseCollect(YamlReader& yaml, const Fields& f, CollectConfig& c) {
  const std::string where = "in 'collect'";
  const Field* tls = f.find("tls");
  if (tls) parseCollectTls(yaml, *tls, c);
  // A CA asks every agent for a certificate: hosts without a token authenticate by it.
  const bool by_certificate = tls && tls->value.IsMap() && peek(tls->value, "ca_file").IsDefined();
  if (yaml.require(f, "listen", where)) {
    std::optional<sys::HostPort> listen;
    yaml.readAddress(f, "listen", listen);
    if (listen) c.listen = *listen;
  }
  if (yaml.require(f, "dir", where)) yaml.readString(f, "dir", c.dir);
  if (by_certificate && !f.find("tokens")) {
    // No tokens: every host authenticates by its client certificate.
  } else if (yaml.require(f, "tokens", where)) {
    const Field* t = f.find("tokens");
    if (!t->value.IsMap() || t->value.size() == 0) {
      yaml.error(YamlReader::valueMark(*t), "'tokens' must map host names to tokens");
    } else {
      for (const auto& kv : t->value) {
        Mark at = toMark(kv.first.Mark());
        if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
          yaml.error(at, "'tokens' must map host names to tokens");
          continue;
        }
        const std::string& host = kv.first.Scalar();
        const std::string& token = kv.second.Scalar();
        if (!validHost(host)) {
          yaml.error(at, "host name " + quote(host) +
                             " may only contain letters, digits, '_', '.' and '-' (not first)");
        } else if (token.size() < 8 || token.size() > 512) {
          yaml.error(toMark(kv.second.Mark()),
                     "the token of host " + quote(host) + " must have 8 to 512 characters");
        } else if (!c.tokens.emplace(host, token).second) {
          yaml.error(at, "host " + quote(host) + " is listed twice in 'tokens'");
        }
      }
    }
  }
  if (auto fs = yaml.subMap(f, "fsync", kFsyncKeys, "in 'collect.fsync'", "fsync.")) {
    yaml.readDuration(*fs, "interval", c.fsync_interval, Millis(1));
    yaml.readSize(*fs, "bytes", c.fsync_bytes, 1);
  }
  if (auto lim = yaml.subMap(f, "limits", kLimitKeys, "in 'collect.limits'", "limits.")) {
    yaml.readSize(*lim, "max_frame", c.max_frame, 1);
    if (const Field* mf = lim->find("max_frame"); mf && c.max_frame > kMaxFrameCap) {
      yaml.error(YamlReader::valueMark(*mf), "'limits.max_frame' must be at most 64MiB");
    }
    yaml.readCount(*lim, "max_connections", c.max_connections, 1);
    yaml.readCount(*lim, "max_streams", c.max_streams, 1);
    yaml.readDuration(*lim, "idle_timeout", c.idle_timeout, Millis(100));
    yaml.readSize(*lim, "min_free", c.min_free, 0);
  }
  if (auto m = yaml.subMap(f, "metrics", kMetricsKeys, "in 'collect.metrics'", "metrics.")) {
    if (yaml.require(*m, "listen", "in 'collect.metrics'")) {
      yaml.readAddress(*m, "listen", c.metrics_listen);
    }
  }
  std::string_view level;
  yaml.readEnum<std::string_view>(f, "log_level", kLogLevels, level);
  if (!level.empty()) c.log_level = std::string(level);
  yaml.readString(f, "log_file", c.log_file, /*allow_empty=*/true);
}

}  // namespace

CollectParseResult parseCollectConfigString(const std::string& text, const std::string& name) {
  YamlReader yaml(name);
  CollectConfig c;
  c.source_path = name;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      yaml.error(toMark(root.Mark()), "the config must be a map with the key 'collect'");
    } else {
      Fields top = yaml.readMap(root, kTopKeys, "at the top level", "");
      if (yaml.require(top, "collect", "at the top level")) {
        if (auto f = yaml.subMap(top, "collect", kCollectKeys, "in 'collect'", "")) {
          parseCollect(yaml, *f, c);
        }
      }
    }
  } catch (const YAML::Exception& e) {
    yaml.error(toMark(e.mark), "syntax error: " + e.msg);
  }
  CollectParseResult r;
  r.errors = std::move(yaml.errors());
  // In file order, as `check` reports the agent's config.
  std::stable_sort(
      r.errors.begin(), r.errors.end(), [](const ConfigError& a, const ConfigError& b) {
        return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
      });
  if (r.errors.empty()) r.config = std::move(c);
  return r;
}

CollectParseResult parseCollectConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    CollectParseResult r;
    r.errors.push_back(ConfigError{path, Mark{}, "cannot read config file"});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parseCollectConfigString(ss.str(), path);
}

bool isCollectConfigFile(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    return root.IsMap() && peek(root, "collect").IsDefined();
  } catch (const std::exception&) {
    return false;
  }
}

void parseLogspliceOutputKeys(YamlReader& yaml, const Fields& fields, const std::string& where,
                              LogspliceOutput& out) {
  // A client certificate can stand for the token (the collector checks it names the host).
  const bool has_cert = out.tcp.tls && !out.tcp.tls->cert_file.empty();
  if (has_cert && !fields.find("token")) return;
  if (yaml.require(fields, "token", where)) yaml.readString(fields, "token", out.token);
}

}  // namespace logsplice::config
