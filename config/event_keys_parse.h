#pragma once

#include <string>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace logsplice::config {

// The parser's part for the keys that configure event outputs: it reads them out of the
// already key-checked `agent`, input and tcp output maps, and reports their errors through
// `yaml`. Their value checks are in config/event_keys.h.

// agent.hostname
void parseEventAgentKeys(YamlReader& yaml, const Fields& fields, AgentConfig& agent);

// An input's `fields` and `multiline`; `label` names the input in messages ("input 'app'").
void parseEventInputKeys(YamlReader& yaml, const Fields& fields, InputConfig& input,
                         const std::string& label);

// A tcp output's `format`, `framing`, `facility`, `severity` and `app_name`.
void parseEventTcpKeys(YamlReader& yaml, const Fields& fields, TcpOutput& tcp);

}  // namespace logsplice::config
