#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sys/error.h"
#include "sys/host_port.h"
#include "config/config.h"

namespace logsplice::config {

// Cross-field checks on a config whose fields were each already checked by the parser:
// input names and output names are unique, every output routes from inputs that exist and lists
// each at most once, no two archive outputs write into the same directory (Vector's
// `resources()`), and `backoff.initial <= backoff.max`. Errors name `config.source_path` and the
// mark of the offending entry (for a bad route, of the list item naming the input). An empty
// result means the config is valid. Pure function; safe to call from any thread (the agent
// calls it again on SIGHUP reloads).
std::vector<ConfigError> validateConfig(const Config& config);

}  // namespace logsplice::config
