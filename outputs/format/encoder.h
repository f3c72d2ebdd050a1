#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "config/config.h"
#include "outputs/format/event.h"
#include "outputs/format/json.h"
#include "outputs/format/syslog5424.h"

namespace logsplice::outputs::format {

// The context of one (output, input) pair from the config: views into `agent`, `input` and
// `tcp`, which must outlive the context and every formatter built from it. APP-NAME is the
// output's app_name, or the input's name when it has none.
EventContext contextFor(const config::AgentConfig& agent, const config::InputConfig& input,
                        const config::TcpOutput& tcp);

// What an event sink calls per event: the output's format and framing in one step, appending
// the complete frame to `out`. Syslog with octet counting formats the header into a reused
// scratch buffer first, so that the MSG is copied once and never moved. One per (output,
// input) pair; not thread-safe. `format` must not be raw (raw outputs do not format).
class EventEncoder {
 public:
  EventEncoder(config::EventFormat format, config::Framing framing, const EventContext& context);

  // Appends the framed event; returns how many ill-formed UTF-8 sequences were replaced.
  size_t append(const Event& event, std::string& out);

 private:
  config::Framing framing_;
  std::optional<SyslogFormatter> syslog_;
  std::optional<JsonFormatter> json_;
  std::string header_;  // syslog header scratch, reused
};

}  // namespace logsplice::outputs::format
