#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "outputs/format/event.h"
#include "outputs/format/timestamp.h"

namespace logsplice::outputs::format {

// NDJSON events, one object per line:
//
//   {"timestamp":"2026-11-30T21:20:00.123456Z","host":"web1","input":"app","file":"/var/log/a",
//    "offset":1234,"message":"...","KEY":"VALUE",...,"partial":true}\n
//
// "partial" is present only for a partial event. The fields follow the fixed keys in config
// order; config/ refuses field keys that would repeat a fixed key. Strings are escaped per
// RFC 8259: '"' and '\' with a backslash, \b \f \n \r \t, other bytes below 0x20 (NUL included)
// as \u00XX; DEL and every valid UTF-8 sequence pass as they are; each ill-formed UTF-8 sequence
// (overlong, surrogate, above U+10FFFF, truncated, stray continuation byte) becomes U+FFFD.
// One per (output, input) pair; not thread-safe.
class JsonFormatter {
 public:
  explicit JsonFormatter(const EventContext& context);

  // Appends the object and its '\n'; returns how many ill-formed UTF-8 sequences it replaced
  // (message and file path), for the sink's metric.
  size_t append(const Event& event, std::string& out);

 private:
  std::string host_;    // ",\"host\":\"...\",\"input\":\"...\",\"file\":\""
  std::string fields_;  // ",\"KEY\":\"VALUE\"..." (may be empty)
  TimestampWriter timestamp_;
};

// Appends `text` as the inside of a JSON string (no quotes); returns the U+FFFD replacements.
// Runs of plain ASCII are found 8 bytes at a time.
size_t appendJsonString(std::string_view text, std::string& out);

}  // namespace logsplice::outputs::format
