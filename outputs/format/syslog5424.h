#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "outputs/format/event.h"
#include "outputs/format/timestamp.h"

namespace logsplice::outputs::format {

// RFC 5424 messages:
//
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME - - [logsplice@32473 file="..." offset="..." input="..."
//   KEY="VALUE"... partial="true"] MSG
//
// - PRI = facility * 8 + severity (user.info = 14).
// - TIMESTAMP is the time the agent read the event, RFC 3339 UTC with microseconds.
// - HOSTNAME (at most 255 bytes) and APP-NAME (at most 48) must be PRINTUSASCII (33..126):
//   every other byte (space, control, non-ASCII) becomes '_', the result is cut to the limit,
//   and an empty name is the NILVALUE "-".
// - PROCID and MSGID are "-": the agent does not know the writer's pid or message type.
// - One SD-ELEMENT with a private SD-ID of the form name@PEN. 32473 is the Private Enterprise
//   Number IANA reserves for documentation (RFC 5612); a site with its own PEN can match on the
//   name. Parameter values escape '"', '\' and ']' with a backslash (section 6.3.3) and have
//   ill-formed UTF-8 replaced by U+FFFD (values must be UTF-8). Field keys are valid PARAM-NAMEs:
//   config/ refuses the others at load.
// - MSG is the event's bytes as they are (any octets are allowed), without a BOM.
// One per (output, input) pair; not thread-safe (it caches the timestamp's second).
class SyslogFormatter {
 public:
  static constexpr std::string_view kSdId = "logsplice@32473";
  static constexpr size_t kMaxHostname = 255;
  static constexpr size_t kMaxAppName = 48;

  explicit SyslogFormatter(const EventContext& context);

  // Appends the message (without framing) to `out`; returns how many ill-formed UTF-8
  // sequences in the file path were replaced (the message itself is never changed).
  size_t append(const Event& event, std::string& out);

  // The message up to and including the structured data ("<14>1 ... ]"), without the MSG:
  // with it, a framer knows the length before copying the MSG (see EventEncoder).
  size_t appendHeader(const Event& event, std::string& out);

  // The parts that do not change, for tests: "<14>1 " and " host app - - ".
  const std::string& head() const { return head_; }
  const std::string& names() const { return names_; }

 private:
  std::string head_;   // "<PRI>1 "
  std::string names_;  // " HOSTNAME APP-NAME - - [logsplice@32473 file=\""
  std::string input_;  // "\" input=\"INPUT\"" + the fields' params
  TimestampWriter timestamp_;
  // The file path escaped for its SD value, kept while events come from the same file (most
  // batches): escaping byte by byte per event was a twentieth of the syslog path's CPU.
  std::string file_raw_;
  std::string file_escaped_;
  size_t file_replaced_ = 0;
};

// Appends `name` as PRINTUSASCII, cut to `max_bytes`, "-" when empty (see above).
void appendSyslogName(std::string_view name, size_t max_bytes, std::string& out);

// Appends an SD PARAM-VALUE's escaped text (without the quotes); returns the replacements of
// ill-formed UTF-8.
size_t appendSdValue(std::string_view value, std::string& out);

}  // namespace logsplice::outputs::format
