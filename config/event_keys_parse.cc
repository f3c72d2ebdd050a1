#include "config/event_keys_parse.h"

#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "config/event_keys.h"

namespace logsplice::config {
namespace {

constexpr std::string_view kMultilineKeys[] = {"start_pattern", "timeout", "max_bytes"};

constexpr std::pair<std::string_view, EventFormat> kFormats[] = {
    {"raw", EventFormat::kRaw}, {"syslog", EventFormat::kSyslog}, {"json", EventFormat::kJson}};
constexpr std::pair<std::string_view, Framing> kFramings[] = {
    {"octet-counting", Framing::kOctetCounting}, {"lf", Framing::kLf}};

void readInputFields(YamlReader& yaml, const Field& f, InputConfig& input) {
  if (!f.value.IsMap()) {
    yaml.error(YamlReader::valueMark(f), "'fields' must be a map of key: string value");
    return;
  }
  std::map<std::string, Mark> seen;
  for (const auto& kv : f.value) {
    Mark key_mark = toMark(kv.first.Mark());
    if (!kv.first.IsScalar()) {
      yaml.error(key_mark, "keys must be plain strings in 'fields'");
      continue;
    }
    const std::string& key = kv.first.Scalar();
    if (std::string problem = fieldKeyProblem(key); !problem.empty()) {
      yaml.error(key_mark, "field " + quote(key) + " " + problem);
      continue;
    }
    if (auto [it, inserted] = seen.emplace(key, key_mark); !inserted) {
      yaml.error(key_mark, "duplicate key " + quote(key) + " in 'fields' (first at " +
                               markText(it->second) + ")");
      continue;
    }
    if (!kv.second.IsScalar()) {
      yaml.error(kv.second.IsNull() ? key_mark : toMark(kv.second.Mark()),
                 "field " + quote(key) + " must have a string value");
      continue;
    }
    input.fields.emplace_back(key, kv.second.Scalar());
  }
}

void readSyslogCode(YamlReader& yaml, const Fields& fields, std::string_view key,
                    std::optional<int> (*lookup)(std::string_view), std::string_view expected,
                    int& out) {
  const Field* f = yaml.scalar(fields, key, "a name or a number");
  if (f == nullptr) return;
  if (std::optional<int> code = lookup(f->value.Scalar())) {
    out = *code;
  } else {
    yaml.error(YamlReader::valueMark(*f), fields.label(key) + ": invalid value " +
                                              quote(f->value.Scalar()) + " (expected " +
                                              std::string(expected) + ")");
  }
}

}  // namespace

void parseEventAgentKeys(YamlReader& yaml, const Fields& fields, AgentConfig& agent) {
  yaml.readString(fields, "hostname", agent.hostname);
}

void parseEventInputKeys(YamlReader& yaml, const Fields& fields, InputConfig& input,
                         const std::string& label) {
  if (const Field* f = fields.find("fields")) readInputFields(yaml, *f, input);
  std::string where = "in 'multiline' of " + label;
  if (auto multiline = yaml.subMap(fields, "multiline", kMultilineKeys, where, "multiline.")) {
    MultilineConfig m;
    if (yaml.require(*multiline, "start_pattern", where)) {
      const Field* f = yaml.scalar(*multiline, "start_pattern", "a string (a PCRE2 regex)");
      if (f != nullptr) {
        m.start_pattern = f->value.Scalar();
        m.start_pattern_mark = YamlReader::valueMark(*f);
        if (m.start_pattern.empty()) {
          yaml.error(YamlReader::valueMark(*f), "'multiline.start_pattern' must not be empty");
        } else if (auto problem = regexProblem(m.start_pattern)) {
          yaml.error(YamlReader::valueMark(*f),
                     "'multiline.start_pattern': invalid regex at offset " +
                         std::to_string(problem->offset) + " of " + quote(m.start_pattern) + ": " +
                         problem->message);
        }
      }
    }
    yaml.readDuration(*multiline, "timeout", m.timeout, Millis(1));
    yaml.readSize(*multiline, "max_bytes", m.max_bytes, 1);
    input.multiline = std::move(m);
  }
}

void parseEventTcpKeys(YamlReader& yaml, const Fields& fields, TcpOutput& tcp) {
  yaml.readEnum<EventFormat>(fields, "format", kFormats, tcp.format);
  yaml.readEnum<Framing>(fields, "framing", kFramings, tcp.framing);
  if (const Field* f = fields.find("framing")) tcp.framing_mark = YamlReader::valueMark(*f);
  readSyslogCode(yaml, fields, "facility", facilityFromText, "kern..local7 or 0-23", tcp.facility);
  readSyslogCode(yaml, fields, "severity", severityFromText, "emerg..debug or 0-7", tcp.severity);
  yaml.readString(fields, "app_name", tcp.app_name);
  if (tcp.format == EventFormat::kSyslog) return;
  for (std::string_view key : {"framing", "facility", "severity", "app_name"}) {
    if (const Field* f = fields.find(key)) {
      yaml.error(YamlReader::keyMark(*f), fields.label(key) + " applies to 'format: syslog' only");
    }
  }
}

}  // namespace logsplice::config
