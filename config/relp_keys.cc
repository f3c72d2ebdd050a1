#include "config/relp_keys.h"

#include <string>

namespace logsplice::config {

TcpOutput relpTransportDefaults() {
  TcpOutput tcp;
  tcp.format = EventFormat::kSyslog;
  tcp.framing = Framing::kOctetCounting;
  return tcp;
}

void parseRelpKeys(YamlReader& yaml, const Fields& fields, RelpOutput& relp) {
  yaml.readCount(fields, "window", relp.window, 1);
  if (relp.window > kRelpMaxWindow) {
    const Field* f = fields.find("window");
    yaml.error(f ? YamlReader::valueMark(*f) : Mark{},
               fields.label("window") + " must be at most " + std::to_string(kRelpMaxWindow));
    relp.window = kRelpMaxWindow;
  }
  yaml.readDuration(fields, "timeout", relp.timeout, Millis(100));
  if (relp.tcp.tls && relp.tcp.tls->ktls == KtlsMode::kRequire) {
    yaml.error(relp.tcp.tls->mark,
               "'tls.ktls: require' cannot apply to a relp output (it reads every answer of the "
               "collector, so its TLS is userspace)");
  }
}

}  // namespace logsplice::config
