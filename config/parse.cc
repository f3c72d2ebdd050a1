#include "config/parse.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <span>
#include <string_view>
#include <utility>

#include "sys/unique_fd.h"
#include "config/event_keys.h"
#include "config/tls_keys.h"
#include "config/units.h"
#include "config/validate.h"

namespace logsplice::config {
namespace {

using KeyList = std::span<const std::string_view>;

// The keys each level of the file may hold (deny_unknown_fields).
constexpr std::string_view kTopKeys[] = {"agent", "inputs", "outputs"};
constexpr std::string_view kAgentKeys[] = {
    "data_dir",         "log_level", "log_file",    "metrics",    "checkpoint_interval",
    "shutdown_timeout", "lockstep",  "chunk_bytes", "pipe_bytes", "max_open_files",
    "hostname"};
constexpr std::string_view kMetricsKeys[] = {"listen"};
constexpr std::string_view kInputKeys[] = {"name",
                                           "paths",
                                           "exclude",
                                           "start_at",
                                           "max_line_bytes",
                                           "poll",
                                           "poll_interval",
                                           "rescan_interval",
                                           "partial_line_timeout",
                                           "rotate_wait",
                                           "copy",
                                           "rotated_retention",
                                           "fields",
                                           "multiline"};
constexpr std::string_view kRetentionKeys[] = {"max_bytes", "max_age"};
constexpr std::string_view kOutputKeys[] = {"name", "type", "inputs"};
constexpr std::string_view kTcpKeys[] = {"addresses", "backoff",  "connect_timeout",
                                         "keepalive", "format",   "framing",
                                         "facility",  "severity", "app_name",
                                         "tls"};
constexpr std::string_view kBackoffKeys[] = {"initial", "max"};
constexpr std::string_view kArchiveKeys[] = {"dir", "rotate", "fsync", "fsync_interval"};
constexpr std::string_view kRotateKeys[] = {"max_bytes", "max_age"};
constexpr std::string_view kMultilineKeys[] = {"start_pattern", "timeout", "max_bytes"};

template <class T>
using EnumTable = std::span<const std::pair<std::string_view, T>>;

constexpr std::pair<std::string_view, std::string_view> kLogLevels[] = {
    {"trace", "trace"}, {"debug", "debug"},       {"info", "info"}, {"warn", "warn"},
    {"error", "error"}, {"critical", "critical"}, {"off", "off"}};
constexpr std::pair<std::string_view, StartAt> kStartAt[] = {{"end", StartAt::kEnd},
                                                             {"beginning", StartAt::kBeginning}};
constexpr std::pair<std::string_view, FsyncPolicy> kFsync[] = {
    {"never", FsyncPolicy::kNever},
    {"rotate", FsyncPolicy::kRotate},
    {"interval", FsyncPolicy::kInterval}};
constexpr std::pair<std::string_view, EventFormat> kFormats[] = {
    {"raw", EventFormat::kRaw}, {"syslog", EventFormat::kSyslog}, {"json", EventFormat::kJson}};
constexpr std::pair<std::string_view, Framing> kFramings[] = {
    {"octet-counting", Framing::kOctetCounting}, {"lf", Framing::kLf}};

enum class OutputType { kUnknown, kTcp, kArchive };

Mark toMark(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return Mark{};
  return Mark{mark.line + 1, mark.column + 1};
}

std::string markText(const Mark& mark) {
  return std::to_string(mark.line) + ":" + std::to_string(mark.column);
}

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// "a, b or c", for the list of accepted values in an error message.
std::string joinChoices(const std::vector<std::string_view>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += (i + 1 == choices.size()) ? " or " : ", ";
    out += choices[i];
  }
  return out;
}

std::string formatMillis(Millis ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + "s";
  return std::to_string(ms.count()) + "ms";
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest allowed key to a misspelt one, or "" when none is close enough to suggest.
std::string_view closestKey(std::string_view key, const std::vector<KeyList>& allowed) {
  size_t limit = key.size() <= 4 ? 1 : 2;
  std::string_view best;
  size_t best_distance = limit + 1;
  for (KeyList list : allowed) {
    for (std::string_view candidate : list) {
      size_t d = editDistance(key, candidate);
      if (d < best_distance) {
        best = candidate;
        best_distance = d;
      }
    }
  }
  return best;
}

bool contains(KeyList list, std::string_view key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

bool isValidName(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// The value of `key` in a map node without touching yaml-cpp's operator[] (which may insert or
// throw); an invalid (zombie) node when absent.
YAML::Node peek(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// One `key: value` entry of a YAML map.
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// The accepted entries of one YAML map, after unknown and repeated keys were reported. `prefix`
// qualifies key names in messages ("rotate." for `rotate.max_bytes`).
class Fields {
 public:
  Fields(YAML::Node map, std::string prefix) : map_(std::move(map)), prefix_(std::move(prefix)) {}

  void add(Field field) { entries_.push_back(std::move(field)); }
  const Field* find(std::string_view key) const {
    for (const Field& f : entries_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
  // "'rotate.max_bytes'"
  std::string label(std::string_view key) const { return quote(prefix_ + std::string(key)); }
  const YAML::Node& map() const { return map_; }

 private:
  YAML::Node map_;
  std::string prefix_;
  std::vector<Field> entries_;
};

// Turns a YAML document into a Config, collecting every problem it finds instead of stopping at
// the first. Field-level checks (types, units, ranges, enums) happen here; checks that relate
// several fields or entries are in validate.cc.
class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  void error(const Mark& mark, std::string message) {
    errors_.push_back(ConfigError{file_, mark, std::move(message)});
  }
  std::vector<ConfigError>& errors() { return errors_; }

  void parseRoot(const YAML::Node& root, Config& config) {
    if (!root.IsMap()) {
      error(toMark(root.Mark()),
            "the config must be a map with the keys 'agent', 'inputs' and 'outputs'");
      return;
    }
    Fields top = readMap(root, kTopKeys, "at the top level", "");
    if (const Field* agent = top.find("agent")) {
      // An `agent:` whose settings are all commented out is fine: every field has a default.
      if (!agent->value.IsNull()) {
        if (auto fields = subMap(top, "agent", kAgentKeys, "in 'agent'", "")) {
          parseAgent(*fields, config.agent);
        }
      }
    }
    parseList(top, "inputs", "input", [&](const YAML::Node& entry, size_t index) {
      config.inputs.push_back(parseInput(entry, index));
    });
    parseList(top, "outputs", "output", [&](const YAML::Node& entry, size_t index) {
      config.outputs.push_back(parseOutput(entry, index));
    });
    if (config.agent.hostname.empty()) config.agent.hostname = machineHostname();
  }

 private:
  static Mark keyMark(const Field& f) { return toMark(f.key_node.Mark()); }
  // Where to point for a problem with a value: the value itself, or its key when the value is
  // empty (yaml-cpp gives an empty value the position of the next token).
  static Mark valueMark(const Field& f) {
    return f.value.IsNull() ? keyMark(f) : toMark(f.value.Mark());
  }

  // Reports unknown and repeated keys of `map` and returns the entries whose key is in `allowed`.
  // Keys in `foreign` belong to another output type; they get a message saying which.
  Fields readMap(const YAML::Node& map, KeyList allowed, const std::string& where,
                 std::string prefix, std::vector<KeyList> extra_allowed = {}, KeyList foreign = {},
                 std::string_view foreign_owner = {}) {
    Fields fields(map, std::move(prefix));
    extra_allowed.insert(extra_allowed.begin(), allowed);
    for (const auto& kv : map) {
      const YAML::Node& key_node = kv.first;
      if (!key_node.IsScalar()) {
        error(toMark(key_node.Mark()), "keys must be plain strings " + where);
        continue;
      }
      const std::string& key = key_node.Scalar();
      Field field{key, key_node, kv.second};
      if (const Field* first = fields.find(key)) {
        error(keyMark(field), "duplicate key " + quote(key) + " " + where + " (first at " +
                                  markText(keyMark(*first)) + ")");
        continue;
      }
      bool known = std::any_of(extra_allowed.begin(), extra_allowed.end(),
                               [&](KeyList list) { return contains(list, key); });
      if (!known) {
        std::string message = "unknown key " + quote(key) + " " + where;
        if (contains(foreign, key)) {
          message += " (only " + std::string(foreign_owner) + " outputs take it)";
        } else if (std::string_view hint = closestKey(key, extra_allowed); !hint.empty()) {
          message += " (did you mean " + quote(hint) + "?)";
        }
        error(keyMark(field), std::move(message));
        continue;
      }
      fields.add(std::move(field));
    }
    return fields;
  }

  // The map under `key`, with its own keys checked; nullopt when absent or not a map.
  std::optional<Fields> subMap(const Fields& parent, std::string_view key, KeyList allowed,
                               const std::string& where, const std::string& prefix) {
    const Field* f = parent.find(key);
    if (f == nullptr) return std::nullopt;
    if (!f->value.IsMap()) {
      error(valueMark(*f), parent.label(key) + " must be a map");
      return std::nullopt;
    }
    return readMap(f->value, allowed, where, prefix);
  }

  bool require(const Fields& fields, std::string_view key, const std::string& where) {
    if (fields.find(key) != nullptr) return true;
    error(toMark(fields.map().Mark()), "missing required key " + quote(key) + " " + where);
    return false;
  }

  // The field for `key` when present and a scalar; reports a wrong type otherwise.
  const Field* scalar(const Fields& fields, std::string_view key, std::string_view expected) {
    const Field* f = fields.find(key);
    if (f == nullptr) return nullptr;
    if (!f->value.IsScalar()) {
      error(valueMark(*f), fields.label(key) + " must be " + std::string(expected));
      return nullptr;
    }
    return f;
  }

  void readString(const Fields& fields, std::string_view key, std::string& out,
                  bool allow_empty = false) {
    const Field* f = scalar(fields, key, "a string");
    if (f == nullptr) return;
    if (f->value.Scalar().empty() && !allow_empty) {
      error(valueMark(*f), fields.label(key) + " must not be empty");
      return;
    }
    out = f->value.Scalar();
  }

  void readBool(const Fields& fields, std::string_view key, bool& out) {
    const Field* f = scalar(fields, key, "true or false");
    if (f == nullptr) return;
    std::string text = f->value.Scalar();
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (text == "true") {
      out = true;
    } else if (text == "false") {
      out = false;
    } else {
      error(valueMark(*f),
            fields.label(key) + " must be true or false, not " + quote(f->value.Scalar()));
    }
  }

  void readSize(const Fields& fields, std::string_view key, uint64_t& out, uint64_t min) {
    const Field* f = scalar(fields, key, "a size such as 64KiB");
    if (f == nullptr) return;
    sys::Result<uint64_t> size = parseSize(f->value.Scalar());
    if (!size.ok()) {
      error(valueMark(*f), fields.label(key) + ": " + size.error().context());
    } else if (size.value() < min) {
      error(valueMark(*f), fields.label(key) + " must be at least " + std::to_string(min) +
                               (min == 1 ? " byte" : " bytes"));
    } else {
      out = size.value();
    }
  }

  void readDuration(const Fields& fields, std::string_view key, Millis& out, Millis min) {
    const Field* f = scalar(fields, key, "a duration such as 5s");
    if (f == nullptr) return;
    sys::Result<Millis> duration = parseDuration(f->value.Scalar());
    if (!duration.ok()) {
      error(valueMark(*f), fields.label(key) + ": " + duration.error().context());
    } else if (duration.value() < min) {
      error(valueMark(*f),
            fields.label(key) + (min == Millis(1) ? " must be greater than zero"
                                                  : " must be at least " + formatMillis(min)));
    } else {
      out = duration.value();
    }
  }

  void readCount(const Fields& fields, std::string_view key, uint64_t& out, uint64_t min) {
    const Field* f = scalar(fields, key, "a whole number");
    if (f == nullptr) return;
    const std::string& text = f->value.Scalar();
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
      error(valueMark(*f), fields.label(key) + " must be a whole number, not " + quote(text));
    } else if (value < min) {
      error(valueMark(*f), fields.label(key) + " must be at least " + std::to_string(min));
    } else {
      out = value;
    }
  }

  template <class T>
  void readEnum(const Fields& fields, std::string_view key, EnumTable<T> table, T& out) {
    std::vector<std::string_view> names;
    for (const auto& entry : table) names.push_back(entry.first);
    const Field* f = scalar(fields, key, "one of " + joinChoices(names));
    if (f == nullptr) return;
    for (const auto& [name, value] : table) {
      if (f->value.Scalar() == name) {
        out = value;
        return;
      }
    }
    error(valueMark(*f), fields.label(key) + ": invalid value " + quote(f->value.Scalar()) +
                             " (expected " + joinChoices(names) + ")");
  }

  // A list of non-empty strings. `check`, when given, returns an error message for a bad item.
  // `marks`, when given, receives where each kept item was written.
  template <class Check>
  void readStringList(const Fields& fields, std::string_view key, std::vector<std::string>& out,
                      Check check, std::vector<Mark>* marks = nullptr) {
    const Field* f = fields.find(key);
    if (f == nullptr) return;
    if (!f->value.IsSequence()) {
      error(valueMark(*f), fields.label(key) + " must be a list of strings");
      return;
    }
    std::vector<std::string> items;
    std::vector<Mark> item_marks;
    for (const YAML::Node& item : f->value) {
      if (!item.IsScalar()) {
        error(item.IsNull() ? valueMark(*f) : toMark(item.Mark()),
              fields.label(key) + " must be a list of strings");
        continue;
      }
      if (item.Scalar().empty()) {
        error(toMark(item.Mark()), fields.label(key) + " must not contain empty strings");
        continue;
      }
      if (std::string problem = check(item.Scalar()); !problem.empty()) {
        error(toMark(item.Mark()), fields.label(key) + ": " + problem);
        continue;
      }
      items.push_back(item.Scalar());
      item_marks.push_back(toMark(item.Mark()));
    }
    out = std::move(items);
    if (marks != nullptr) *marks = std::move(item_marks);
  }

  void readStringList(const Fields& fields, std::string_view key, std::vector<std::string>& out) {
    readStringList(fields, key, out, [](const std::string&) { return std::string(); });
  }

  void readAddress(const Fields& fields, std::string_view key,
                   std::optional<sys::HostPort>& out) {
    const Field* f = scalar(fields, key, "a host:port address");
    if (f == nullptr) return;
    sys::Result<sys::HostPort> address =
        sys::parseHostPort(f->value.Scalar(), /*allow_port_zero=*/true);
    if (!address.ok()) {
      error(valueMark(*f), fields.label(key) + ": " + address.error().context());
      return;
    }
    out = std::move(address.value());
  }

  // A required, non-empty list under the top-level `key`; calls `parse_entry` for each map in it.
  template <class ParseEntry>
  void parseList(const Fields& top, std::string_view key, std::string_view noun,
                 ParseEntry parse_entry) {
    if (!require(top, key, "at the top level")) return;
    const Field* f = top.find(key);
    if (!f->value.IsSequence()) {
      error(valueMark(*f), top.label(key) + " must be a list of " + std::string(noun) + "s");
      return;
    }
    if (f->value.size() == 0) {
      error(valueMark(*f), top.label(key) + " must list at least one " + std::string(noun));
      return;
    }
    size_t index = 0;
    for (const YAML::Node& entry : f->value) {
      ++index;
      if (!entry.IsMap()) {
        error(entry.IsNull() ? valueMark(*f) : toMark(entry.Mark()),
              std::string(noun) + " #" + std::to_string(index) + " must be a map");
        continue;
      }
      parse_entry(entry, index);
    }
  }

  void parseAgent(const Fields& fields, AgentConfig& agent) {
    readString(fields, "data_dir", agent.data_dir);
    std::string_view level;
    readEnum<std::string_view>(fields, "log_level", kLogLevels, level);
    if (!level.empty()) agent.log_level = std::string(level);
    readString(fields, "log_file", agent.log_file, /*allow_empty=*/true);
    if (auto metrics = subMap(fields, "metrics", kMetricsKeys, "in 'agent.metrics'", "metrics.")) {
      if (require(*metrics, "listen", "in 'agent.metrics'")) {
        readAddress(*metrics, "listen", agent.metrics_listen);
      }
    }
    readDuration(fields, "checkpoint_interval", agent.checkpoint_interval, Millis(1));
    readDuration(fields, "shutdown_timeout", agent.shutdown_timeout, Millis(0));
    readBool(fields, "lockstep", agent.lockstep);
    readSize(fields, "chunk_bytes", agent.chunk_bytes, 1);
    readSize(fields, "pipe_bytes", agent.pipe_bytes, 1);
    readCount(fields, "max_open_files", agent.max_open_files, 1);
    parseEventAgentKeys(fields, agent);
  }

  // Reads `name` for an input or output entry.
  void readName(const Fields& fields, std::string_view noun, std::string& name) {
    const Field* f = scalar(fields, "name", "a string");
    if (f == nullptr) return;
    const std::string& text = f->value.Scalar();
    if (text.empty()) {
      error(valueMark(*f), std::string(noun) + " name must not be empty");
      return;
    }
    if (!isValidName(text)) {
      error(valueMark(*f), std::string(noun) + " name " + quote(text) +
                               " may only contain letters, digits, '_', '.' and '-'");
    }
    name = text;  // kept even when invalid, so that routes to it do not add more errors
  }

  static std::string entryLabel(const YAML::Node& entry, std::string_view noun, size_t index) {
    YAML::Node name = peek(entry, "name");
    if (name.IsDefined() && name.IsScalar() && !name.Scalar().empty()) {
      return std::string(noun) + " " + quote(name.Scalar());
    }
    return std::string(noun) + " #" + std::to_string(index);
  }

  InputConfig parseInput(const YAML::Node& entry, size_t index) {
    InputConfig input;
    input.mark = toMark(entry.Mark());
    std::string label = entryLabel(entry, "input", index);
    std::string where = "in " + label;
    Fields fields = readMap(entry, kInputKeys, where, "");
    if (require(fields, "name", where)) readName(fields, "input", input.name);
    if (require(fields, "paths", where)) {
      readStringList(fields, "paths", input.paths, [](const std::string& path) {
        if (path.front() == '/') return std::string();
        return "path " + quote(path) + " must be absolute";
      });
      const Field* paths = fields.find("paths");
      if (paths->value.IsSequence() && paths->value.size() == 0) {
        error(valueMark(*paths), "'paths' must list at least one path");
      }
    }
    readStringList(fields, "exclude", input.exclude);
    readEnum<StartAt>(fields, "start_at", kStartAt, input.start_at);
    readSize(fields, "max_line_bytes", input.max_line_bytes, 1);
    readBool(fields, "poll", input.poll);
    readDuration(fields, "poll_interval", input.poll_interval, Millis(1));
    readDuration(fields, "rescan_interval", input.rescan_interval, Millis(1));
    readDuration(fields, "partial_line_timeout", input.partial_line_timeout, Millis(1));
    readDuration(fields, "rotate_wait", input.rotate_wait, Millis(0));
    readBool(fields, "copy", input.copy);
    std::string retention_where = "in 'rotated_retention' of " + label;
    if (auto retention = subMap(fields, "rotated_retention", kRetentionKeys, retention_where,
                                "rotated_retention.")) {
      readSize(*retention, "max_bytes", input.rotated_retention.max_bytes, 0);
      readDuration(*retention, "max_age", input.rotated_retention.max_age, Millis(0));
    }
    parseEventInputKeys(fields, input, label);
    return input;
  }

  static OutputType peekType(const YAML::Node& entry) {
    YAML::Node type = peek(entry, "type");
    if (!type.IsDefined() || !type.IsScalar()) return OutputType::kUnknown;
    if (type.Scalar() == "tcp") return OutputType::kTcp;
    if (type.Scalar() == "archive") return OutputType::kArchive;
    return OutputType::kUnknown;
  }

  OutputConfig parseOutput(const YAML::Node& entry, size_t index) {
    OutputConfig output;
    output.mark = toMark(entry.Mark());
    std::string label = entryLabel(entry, "output", index);
    std::string where = "in " + label;
    OutputType type = peekType(entry);
    Fields fields = [&] {
      switch (type) {
        case OutputType::kTcp:
          return readMap(entry, kOutputKeys, where, "", {kTcpKeys}, kArchiveKeys, "archive");
        case OutputType::kArchive:
          return readMap(entry, kOutputKeys, where, "", {kArchiveKeys}, kTcpKeys, "tcp");
        case OutputType::kUnknown:
          break;
      }
      // Without a known type, accept the keys of every type; the type error says enough.
      return readMap(entry, kOutputKeys, where, "", {kTcpKeys, kArchiveKeys});
    }();
    if (require(fields, "name", where)) readName(fields, "output", output.name);
    if (require(fields, "type", where)) {
      const Field* f = scalar(fields, "type", "tcp or archive");
      if (f != nullptr && type == OutputType::kUnknown) {
        error(valueMark(*f),
              "unknown output type " + quote(f->value.Scalar()) + " (expected tcp or archive)");
      }
    }
    if (require(fields, "inputs", where)) {
      readStringList(
          fields, "inputs", output.inputs, [](const std::string&) { return std::string(); },
          &output.input_marks);
      const Field* inputs = fields.find("inputs");
      if (inputs->value.IsSequence() && inputs->value.size() == 0) {
        error(valueMark(*inputs), "'inputs' must list at least one input " + where);
      }
    }
    switch (type) {
      case OutputType::kTcp:
        output.kind = parseTcp(fields, label);
        break;
      case OutputType::kArchive:
        output.kind = parseArchive(fields, label);
        break;
      case OutputType::kUnknown:
        break;  // kept, so that its name and routes are still checked
    }
    return output;
  }

  TcpOutput parseTcp(const Fields& fields, const std::string& label) {
    TcpOutput tcp;
    std::string where = "in " + label;
    if (require(fields, "addresses", where)) {
      std::vector<std::string> texts;
      readStringList(fields, "addresses", texts, [](const std::string& address) {
        sys::Result<sys::HostPort> parsed = sys::parseHostPort(address);
        return parsed.ok() ? std::string() : parsed.error().context();
      });
      for (const std::string& text : texts) {
        sys::Result<sys::HostPort> parsed = sys::parseHostPort(text);
        if (parsed.ok()) tcp.addresses.push_back(std::move(parsed.value()));
      }
      const Field* addresses = fields.find("addresses");
      if (addresses->value.IsSequence() && addresses->value.size() == 0) {
        error(valueMark(*addresses), "'addresses' must list at least one host:port");
      }
    }
    std::string backoff_where = "in 'backoff' of " + label;
    if (auto backoff = subMap(fields, "backoff", kBackoffKeys, backoff_where, "backoff.")) {
      readDuration(*backoff, "initial", tcp.backoff.initial, Millis(1));
      readDuration(*backoff, "max", tcp.backoff.max, Millis(1));
    }
    readDuration(fields, "connect_timeout", tcp.connect_timeout, Millis(1));
    // TCP_KEEPIDLE counts whole seconds, and 0 is refused by the kernel.
    readDuration(fields, "keepalive", tcp.keepalive, Millis(1000));
    parseEventTcpKeys(fields, tcp);
    if (const Field* f = fields.find("tls")) parseTlsKeys(f->value, file_, tcp.tls.emplace(), errors_);
    return tcp;
  }

  ArchiveOutput parseArchive(const Fields& fields, const std::string& label) {
    ArchiveOutput archive;
    std::string where = "in " + label;
    if (require(fields, "dir", where)) readString(fields, "dir", archive.dir);
    std::string rotate_where = "in 'rotate' of " + label;
    if (auto rotate = subMap(fields, "rotate", kRotateKeys, rotate_where, "rotate.")) {
      readSize(*rotate, "max_bytes", archive.rotate_max_bytes, 1);
      readDuration(*rotate, "max_age", archive.rotate_max_age, Millis(1));
    }
    readEnum<FsyncPolicy>(fields, "fsync", kFsync, archive.fsync);
    readDuration(fields, "fsync_interval", archive.fsync_interval, Millis(1));
    return archive;
  }

  // --- The keys of event outputs (values checked in config/event_keys.cc) ---------------------

  void parseEventAgentKeys(const Fields& fields, AgentConfig& agent) {
    readString(fields, "hostname", agent.hostname);
  }

  void parseEventInputKeys(const Fields& fields, InputConfig& input, const std::string& label) {
    if (const Field* f = fields.find("fields")) readInputFields(*f, input);
    std::string where = "in 'multiline' of " + label;
    if (auto multiline = subMap(fields, "multiline", kMultilineKeys, where, "multiline.")) {
      MultilineConfig m;
      if (require(*multiline, "start_pattern", where)) {
        const Field* f = scalar(*multiline, "start_pattern", "a string (a PCRE2 regex)");
        if (f != nullptr) {
          m.start_pattern = f->value.Scalar();
          m.start_pattern_mark = valueMark(*f);
          if (m.start_pattern.empty()) {
            error(valueMark(*f), "'multiline.start_pattern' must not be empty");
          } else if (auto problem = regexProblem(m.start_pattern)) {
            error(valueMark(*f), "'multiline.start_pattern': invalid regex at offset " +
                                     std::to_string(problem->offset) + " of " +
                                     quote(m.start_pattern) + ": " + problem->message);
          }
        }
      }
      readDuration(*multiline, "timeout", m.timeout, Millis(1));
      readSize(*multiline, "max_bytes", m.max_bytes, 1);
      input.multiline = std::move(m);
    }
  }

  void readInputFields(const Field& f, InputConfig& input) {
    if (!f.value.IsMap()) {
      error(valueMark(f), "'fields' must be a map of key: string value");
      return;
    }
    std::map<std::string, Mark> seen;
    for (const auto& kv : f.value) {
      Mark key_mark = toMark(kv.first.Mark());
      if (!kv.first.IsScalar()) {
        error(key_mark, "keys must be plain strings in 'fields'");
        continue;
      }
      const std::string& key = kv.first.Scalar();
      if (std::string problem = fieldKeyProblem(key); !problem.empty()) {
        error(key_mark, "field " + quote(key) + " " + problem);
        continue;
      }
      if (auto [it, inserted] = seen.emplace(key, key_mark); !inserted) {
        error(key_mark, "duplicate key " + quote(key) + " in 'fields' (first at " +
                            markText(it->second) + ")");
        continue;
      }
      if (!kv.second.IsScalar()) {
        error(kv.second.IsNull() ? key_mark : toMark(kv.second.Mark()),
              "field " + quote(key) + " must have a string value");
        continue;
      }
      input.fields.emplace_back(key, kv.second.Scalar());
    }
  }

  void parseEventTcpKeys(const Fields& fields, TcpOutput& tcp) {
    readEnum<EventFormat>(fields, "format", kFormats, tcp.format);
    readEnum<Framing>(fields, "framing", kFramings, tcp.framing);
    if (const Field* f = fields.find("framing")) tcp.framing_mark = valueMark(*f);
    readSyslogCode(fields, "facility", facilityFromText, "kern..local7 or 0-23", tcp.facility);
    readSyslogCode(fields, "severity", severityFromText, "emerg..debug or 0-7", tcp.severity);
    readString(fields, "app_name", tcp.app_name);
    if (tcp.format == EventFormat::kSyslog) return;
    for (std::string_view key : {"framing", "facility", "severity", "app_name"}) {
      if (const Field* f = fields.find(key)) {
        error(keyMark(*f), fields.label(key) + " applies to 'format: syslog' only");
      }
    }
  }

  void readSyslogCode(const Fields& fields, std::string_view key,
                      std::optional<int> (*lookup)(std::string_view), std::string_view expected,
                      int& out) {
    const Field* f = scalar(fields, key, "a name or a number");
    if (f == nullptr) return;
    if (std::optional<int> code = lookup(f->value.Scalar())) {
      out = *code;
    } else {
      error(valueMark(*f), fields.label(key) + ": invalid value " + quote(f->value.Scalar()) +
                               " (expected " + std::string(expected) + ")");
    }
  }

  std::string file_;
  std::vector<ConfigError> errors_;
};

ParseResult finish(Parser& parser, Config config) {
  std::vector<ConfigError> errors = std::move(parser.errors());
  std::vector<ConfigError> cross = validateConfig(config);
  errors.insert(errors.end(), std::make_move_iterator(cross.begin()),
                std::make_move_iterator(cross.end()));
  // Report in file order, so `check` reads like the file; unplaced errors come first.
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
  });
  ParseResult result;
  if (errors.empty()) result.config = std::move(config);
  result.errors = std::move(errors);
  return result;
}

}  // namespace

ParseResult parseConfigString(const std::string& text, const std::string& name) {
  Parser parser(name);
  Config config;
  config.source_path = name;
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.empty() || (documents.size() == 1 && documents[0].IsNull())) {
      parser.error(Mark{}, "the config is empty (it needs 'inputs' and 'outputs')");
      return ParseResult{std::nullopt, std::move(parser.errors())};
    }
    if (documents.size() > 1) {
      parser.error(toMark(documents[1].Mark()),
                   "the config must be a single YAML document (found " +
                       std::to_string(documents.size()) + ")");
    }
    parser.parseRoot(documents[0], config);
  } catch (const YAML::ParserException& e) {
    parser.error(toMark(e.mark), "syntax error: " + e.msg);
    return ParseResult{std::nullopt, std::move(parser.errors())};
  } catch (const YAML::Exception& e) {
    parser.error(toMark(e.mark), "cannot read the config: " + e.msg);
    return ParseResult{std::nullopt, std::move(parser.errors())};
  } catch (const std::exception& e) {
    parser.error(Mark{}, std::string("cannot read the config: ") + e.what());
    return ParseResult{std::nullopt, std::move(parser.errors())};
  }
  return finish(parser, std::move(config));
}

ParseResult parseConfigFile(const std::string& path) {
  auto unreadable = [&](int err) {
    ParseResult result;
    result.errors.push_back(
        ConfigError{path, Mark{}, "cannot read config file: " + std::string(std::strerror(err))});
    return result;
  };
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return unreadable(errno);
  std::string text;
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return unreadable(errno);  // EISDIR for a directory
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return parseConfigString(text, path);
}

}  // namespace logsplice::config
