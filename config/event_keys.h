#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace logsplice::config {

// The value checks of the keys that configure event outputs (agent.hostname, an input's
// `fields` and `multiline`, a tcp output's `format`, `framing`, `facility`, `severity` and
// `app_name`), kept apart from the parser's generic machinery.

// Syslog facility: kern user mail daemon auth syslog lpr news uucp cron authpriv ftp ntp audit
// alert clock local0..local7, or its number 0..23.
std::optional<int> facilityFromText(std::string_view text);
// Syslog severity: emerg alert crit err warning notice info debug (also "error", "warn"), or
// its number 0..7.
std::optional<int> severityFromText(std::string_view text);

// Keys every event already has (JSON keys, SD params); a field may not take one of them.
inline constexpr std::string_view kReservedFieldKeys[] = {"timestamp", "host",    "input",  "file",
                                                          "offset",    "message", "partial"};

// What is wrong with a `fields` key, or "" when it is fine: it must be an RFC 5424 PARAM-NAME
// (1 to 32 printable US-ASCII characters, none of '=', ' ', ']', '"'), so that it can go into
// the syslog structured data unchanged, and not be one of kReservedFieldKeys.
std::string fieldKeyProblem(std::string_view key);

// Compiles `pattern` with PCRE2 to check it; nullopt when it compiles.
struct RegexProblem {
  size_t offset = 0;  // byte offset in the pattern where PCRE2 stopped
  std::string message;
};
std::optional<RegexProblem> regexProblem(std::string_view pattern);

// The machine's host name (gethostname), "localhost" if it cannot be had.
std::string machineHostname();

// Cross checks of the event keys, appended to `errors`: a syslog output with `framing: lf`
// routed from an input with `multiline` (a newline inside an event would split it at the
// collector), reported at the `framing` value.
void validateEventOutputs(const Config& config, std::vector<ConfigError>& errors);

}  // namespace logsplice::config
