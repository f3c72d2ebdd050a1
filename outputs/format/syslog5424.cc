#include "outputs/format/syslog5424.h"

#include <charconv>

#include "outputs/format/utf8.h"

namespace logsplice::outputs::format {

void appendSyslogName(std::string_view name, size_t max_bytes, std::string& out) {
  if (name.empty()) {
    out.push_back('-');
    return;
  }
  if (name.size() > max_bytes) name = name.substr(0, max_bytes);
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 33 && u <= 126 ? c : '_');
  }
}

size_t appendSdValue(std::string_view value, std::string& out) {
  size_t replaced = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  size_t n = value.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c >= 0x80) {
      utf8::Sequence seq = utf8::decode(p + i, n - i);
      if (seq.valid) {
        out.append(value.data() + i, seq.length);
      } else {
        out.append(utf8::kReplacement);
        ++replaced;
      }
      i += seq.length;
      continue;
    }
    if (c == '"' || c == '\\' || c == ']') out.push_back('\\');
    out.push_back(static_cast<char>(c));
    ++i;
  }
  return replaced;
}

SyslogFormatter::SyslogFormatter(const EventContext& context) {
  int facility = context.facility < 0 || context.facility > 23 ? 1 : context.facility;
  int severity = context.severity < 0 || context.severity > 7 ? 6 : context.severity;
  head_ = "<" + std::to_string(facility * 8 + severity) + ">1 ";
  names_ = " ";
  appendSyslogName(context.host, kMaxHostname, names_);
  names_ += ' ';
  appendSyslogName(context.app_name, kMaxAppName, names_);
  names_ += " - - [";
  names_ += kSdId;
  names_ += " file=\"";
  input_ = "\" input=\"";
  (void)appendSdValue(context.input, input_);
  input_ += '"';
  for (const FieldPair& field : context.fields) {
    input_ += ' ';
    input_ += field.first;
    input_ += "=\"";
    (void)appendSdValue(field.second, input_);
    input_ += '"';
  }
}

size_t SyslogFormatter::append(const Event& event, std::string& out) {
  out.reserve(out.size() + head_.size() + TimestampWriter::kLength + names_.size() +
              event.file.size() + 40 + input_.size() + event.message.size());
  size_t replaced = appendHeader(event, out);
  // MSG is optional (SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]): no space without one.
  if (!event.message.empty()) {
    out += ' ';
    out += event.message;
  }
  return replaced;
}

size_t SyslogFormatter::appendHeader(const Event& event, std::string& out) {
  out += head_;
  timestamp_.append(event.read_time_us, out);
  out += names_;
  if (event.file != file_raw_) {
    file_raw_.assign(event.file);
    file_escaped_.clear();
    file_replaced_ = appendSdValue(event.file, file_escaped_);
  }
  out += file_escaped_;
  size_t replaced = file_replaced_;
  out += "\" offset=\"";
  char digits[24];
  auto result = std::to_chars(digits, digits + sizeof(digits), event.offset);
  out.append(digits, result.ptr);
  out += input_;
  if (event.partial) out += " partial=\"true\"";
  out += ']';
  return replaced;
}

}  // namespace logsplice::outputs::format
