#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace logsplice::config {

// The keys of a `type: kafka` output besides name, type and inputs.
std::span<const std::string_view> kafkaKeys();

// Reads a kafka output's keys (already checked against kafkaKeys()) into `kafka`, reporting
// each bad value at its file:line:col. Every `librdkafka:` property is set on a scratch
// librdkafka configuration, so an unknown property or a value librdkafka refuses is a config
// error at `check` and at start, in librdkafka's own words.
void parseKafkaKeys(YamlReader& yaml, const Fields& fields, KafkaOutput& kafka,
                    const std::string& label);

// The librdkafka properties the output is built with: ours from the typed keys, then the
// `librdkafka:` map (which wins). `host` is the agent's host name (client.id).
std::vector<std::pair<std::string, std::string>> kafkaProperties(const KafkaOutput& kafka,
                                                                 const std::string& host);

// The topic of an event of input `input` on host `host`: ${input} and ${host} replaced.
std::string kafkaTopicFor(const std::string& topic_template, std::string_view input,
                          std::string_view host);

}  // namespace logsplice::config
