#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace logsplice::outputs::format {

// One `key: value` of an input's static `fields`, in the order of the config file.
using FieldPair = std::pair<std::string, std::string>;

// What does not change from one event to the next of one (output, input) pair: a formatter
// builds its constant parts from it once. The views must outlive the formatter built from it.
struct EventContext {
  std::string_view host;              // agent.hostname
  std::string_view app_name;          // the output's app_name, or the input's name
  std::string_view input;             // the input's name
  int facility = 1;                   // 0..23 (1 = user)
  int severity = 6;                   // 0..7 (6 = info)
  std::span<const FieldPair> fields;  // the input's `fields`, keys already checked by config/
};

// One event as a formatter sees it. Views into the sink's buffers, valid during the call only.
struct Event {
  std::string_view message;  // the bytes of the line(s), without the trailing newline
  std::string_view file;     // the path of the file it was read from
  uint64_t offset = 0;       // file offset of the event's first byte
  int64_t read_time_us = 0;  // when the agent read it, unix microseconds
  // A piece of something longer: a line longer than max_line_bytes, or a multiline event cut
  // at multiline.max_bytes. The formats mark it so that a collector can tell.
  bool partial = false;
};

}  // namespace logsplice::outputs::format
