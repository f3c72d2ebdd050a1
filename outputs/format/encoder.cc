#include "outputs/format/encoder.h"

#include <charconv>

#include "outputs/format/framing.h"
#include "sys/assert.h"

namespace logsplice::outputs::format {

EventContext contextFor(const config::AgentConfig& agent, const config::InputConfig& input,
                        const config::TcpOutput& tcp) {
  EventContext context;
  context.host = agent.hostname;
  context.app_name = tcp.app_name.empty() ? std::string_view(input.name) : tcp.app_name;
  context.input = input.name;
  context.facility = tcp.facility;
  context.severity = tcp.severity;
  context.fields = input.fields;
  return context;
}

EventEncoder::EventEncoder(config::EventFormat format, config::Framing framing,
                           const EventContext& context)
    : framing_(framing) {
  LS_ASSERT(format != config::EventFormat::kRaw, "raw outputs do not format events");
  if (format == config::EventFormat::kSyslog) {
    syslog_.emplace(context);
  } else {
    json_.emplace(context);
  }
}

size_t EventEncoder::append(const Event& event, std::string& out) {
  if (json_) return json_->append(event, out);  // NDJSON: the formatter ends it with '\n'
  if (framing_ == config::Framing::kLf) {
    size_t replaced = syslog_->append(event, out);
    out += '\n';
    return replaced;
  }
  header_.clear();
  size_t replaced = syslog_->appendHeader(event, header_);
  size_t length = header_.size() + (event.message.empty() ? 0 : 1 + event.message.size());
  char digits[24];
  auto result = std::to_chars(digits, digits + sizeof(digits) - 1, length);
  *result.ptr++ = ' ';
  out.reserve(out.size() + static_cast<size_t>(result.ptr - digits) + length);
  out.append(digits, result.ptr);
  out += header_;
  if (!event.message.empty()) {
    out += ' ';
    out += event.message;
  }
  return replaced;
}

}  // namespace logsplice::outputs::format
