#include "config/config.h"

namespace logsplice::config {

std::string ConfigError::toString() const {
  std::string out = file;
  if (mark.line > 0) out += ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column);
  return out + ": " + message;
}

}  // namespace logsplice::config
