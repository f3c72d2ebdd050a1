#include "config/event_keys.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <map>
#include <span>
#include <utility>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace logsplice::config {
namespace {

constexpr std::pair<std::string_view, int> kFacilities[] = {
    {"kern", 0},      {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},
    {"syslog", 5},    {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},    {"ntp", 12},    {"audit", 13},  {"alert", 14},
    {"clock", 15},    {"local0", 16}, {"local1", 17}, {"local2", 18}, {"local3", 19},
    {"local4", 20},   {"local5", 21}, {"local6", 22}, {"local7", 23}};

constexpr std::pair<std::string_view, int> kSeverities[] = {
    {"emerg", 0},   {"alert", 1}, {"crit", 2},   {"err", 3},  {"error", 3},
    {"warning", 4}, {"warn", 4},  {"notice", 5}, {"info", 6}, {"debug", 7}};

std::optional<int> fromText(std::string_view text,
                            std::span<const std::pair<std::string_view, int>> names, int max) {
  for (const auto& [name, value] : names) {
    if (text == name) return value;
  }
  int value = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < 0 || value > max) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<int> facilityFromText(std::string_view text) {
  return fromText(text, kFacilities, 23);
}

std::optional<int> severityFromText(std::string_view text) {
  return fromText(text, kSeverities, 7);
}

std::string fieldKeyProblem(std::string_view key) {
  if (key.empty() || key.size() > 32) {
    return "must be 1 to 32 characters long (an RFC 5424 SD parameter name)";
  }
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126 || c == '=' || c == ']' || c == '"') {
      return "may only contain printable ASCII characters other than '=', ']', '\"' and space "
             "(an RFC 5424 SD parameter name)";
    }
  }
  if (std::find(std::begin(kReservedFieldKeys), std::end(kReservedFieldKeys), key) !=
      std::end(kReservedFieldKeys)) {
    return "is a key every event already has";
  }
  return {};
}

std::optional<RegexProblem> regexProblem(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0,
                                   &error_code, &error_offset, nullptr);
  if (code != nullptr) {
    pcre2_code_free(code);
    return std::nullopt;
  }
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(error_code, message, sizeof(message));
  return RegexProblem{error_offset, reinterpret_cast<const char*>(message)};
}

std::string machineHostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

void validateEventOutputs(const Config& config, std::vector<ConfigError>& errors) {
  std::map<std::string, const InputConfig*> inputs;
  for (const InputConfig& input : config.inputs) inputs.emplace(input.name, &input);
  for (const OutputConfig& output : config.outputs) {
    const auto* tcp = std::get_if<TcpOutput>(&output.kind);
    if (tcp == nullptr || tcp->format != EventFormat::kSyslog || tcp->framing != Framing::kLf) {
      continue;
    }
    for (const std::string& name : output.inputs) {
      auto it = inputs.find(name);
      if (it == inputs.end() || !it->second->multiline) continue;
      errors.push_back(ConfigError{
          config.source_path, tcp->framing_mark,
          "'framing: lf' cannot carry the multiline events of input '" + name +
              "' (a newline would split them); use 'framing: octet-counting' in output '" +
              output.name + "'"});
    }
  }
}

}  // namespace logsplice::config
