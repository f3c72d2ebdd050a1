#include "config/parse.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iterator>
#include <string_view>
#include <utility>

#include "sys/error.h"
#include "sys/host_port.h"
#include "sys/unique_fd.h"
#include "config/collect_keys.h"
#include "config/event_keys.h"
#include "config/event_keys_parse.h"
#include "config/kafka_keys.h"
#include "config/relp_keys.h"
#include "config/tls_keys.h"
#include "config/validate.h"
#include "config/yaml_reader.h"

namespace logsplice::config {
namespace {

// The keys each level of the file may hold (deny_unknown_fields).
constexpr std::string_view kTopKeys[] = {"agent", "inputs", "outputs"};
constexpr std::string_view kAgentKeys[] = {
    "data_dir",         "log_level", "log_file",    "metrics",    "checkpoint_interval",
    "shutdown_timeout", "lockstep",  "chunk_bytes", "pipe_bytes", "max_open_files",
    "hostname",         "batch_delay"};
constexpr std::string_view kMetricsKeys[] = {"listen"};
constexpr std::string_view kInputKeys[] = {"name",
                                           "paths",
                                           "exclude",
                                           "start_at",
                                           "max_line_bytes",
                                           "poll",
                                           "poll_interval",
                                           "rescan_interval",
                                           "batch_delay",
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
constexpr std::string_view kLogspliceKeys[] = {"addresses", "backoff", "connect_timeout",
                                               "keepalive", "token",   "tls"};
constexpr std::string_view kBackoffKeys[] = {"initial", "max"};
constexpr std::string_view kArchiveKeys[] = {"dir", "rotate", "fsync", "fsync_interval"};
constexpr std::string_view kRotateKeys[] = {"max_bytes", "max_age"};

constexpr std::pair<std::string_view, std::string_view> kLogLevels[] = {
    {"trace", "trace"}, {"debug", "debug"},       {"info", "info"}, {"warn", "warn"},
    {"error", "error"}, {"critical", "critical"}, {"off", "off"}};
constexpr std::pair<std::string_view, StartAt> kStartAt[] = {{"end", StartAt::kEnd},
                                                             {"beginning", StartAt::kBeginning}};
constexpr std::pair<std::string_view, FsyncPolicy> kFsync[] = {
    {"never", FsyncPolicy::kNever},
    {"rotate", FsyncPolicy::kRotate},
    {"interval", FsyncPolicy::kInterval}};

enum class OutputType { kUnknown, kTcp, kArchive, kKafka, kLogsplice, kRelp };

bool isValidName(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// Turns a YAML document into a Config, collecting every problem it finds instead of stopping at
// the first. This is the schema: which sections and keys there are and what each one means.
// Reading typed values and collecting errors is YamlReader's (yaml_reader.h); the event-output
// keys are read in event_keys_parse.cc; checks that relate several fields or entries are in
// validate.cc.
class Parser {
 public:
  explicit Parser(std::string file) : yaml_(std::move(file)) {}

  void error(const Mark& mark, std::string message) { yaml_.error(mark, std::move(message)); }
  std::vector<ConfigError>& errors() { return yaml_.errors(); }

  void parseRoot(const YAML::Node& root, Config& config) {
    if (!root.IsMap()) {
      error(toMark(root.Mark()),
            "the config must be a map with the keys 'agent', 'inputs' and 'outputs'");
      return;
    }
    Fields top = yaml_.readMap(root, kTopKeys, "at the top level", "");
    if (const Field* agent = top.find("agent")) {
      // An `agent:` whose settings are all commented out is fine: every field has a default.
      if (!agent->value.IsNull()) {
        if (auto fields = yaml_.subMap(top, "agent", kAgentKeys, "in 'agent'", "")) {
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
    for (InputConfig& input : config.inputs) {
      if (!input.batch_delay) input.batch_delay = config.agent.batch_delay;
    }
  }

 private:
  static Mark valueMark(const Field& f) { return YamlReader::valueMark(f); }

  // A required, non-empty list under the top-level `key`; calls `parse_entry` for each map in it.
  template <class ParseEntry>
  void parseList(const Fields& top, std::string_view key, std::string_view noun,
                 ParseEntry parse_entry) {
    if (!yaml_.require(top, key, "at the top level")) return;
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
    yaml_.readString(fields, "data_dir", agent.data_dir);
    std::string_view level;
    yaml_.readEnum<std::string_view>(fields, "log_level", kLogLevels, level);
    if (!level.empty()) agent.log_level = std::string(level);
    yaml_.readString(fields, "log_file", agent.log_file, /*allow_empty=*/true);
    if (auto metrics =
            yaml_.subMap(fields, "metrics", kMetricsKeys, "in 'agent.metrics'", "metrics.")) {
      if (yaml_.require(*metrics, "listen", "in 'agent.metrics'")) {
        yaml_.readAddress(*metrics, "listen", agent.metrics_listen);
      }
    }
    yaml_.readDuration(fields, "checkpoint_interval", agent.checkpoint_interval, Millis(1));
    yaml_.readDuration(fields, "shutdown_timeout", agent.shutdown_timeout, Millis(0));
    yaml_.readBool(fields, "lockstep", agent.lockstep);
    yaml_.readSize(fields, "chunk_bytes", agent.chunk_bytes, 1);
    yaml_.readSize(fields, "pipe_bytes", agent.pipe_bytes, 1);
    yaml_.readCount(fields, "max_open_files", agent.max_open_files, 1);
    if (auto delay = readBatchDelay(fields)) agent.batch_delay = *delay;
    parseEventAgentKeys(yaml_, fields, agent);
  }

  // `batch_delay` (agent or input): 0 .. kMaxBatchDelay; nothing when absent or wrong (the
  // error is reported).
  std::optional<Millis> readBatchDelay(const Fields& fields) {
    const Field* f = fields.find("batch_delay");
    if (f == nullptr) return std::nullopt;
    Millis delay{-1};
    yaml_.readDuration(fields, "batch_delay", delay, Millis(0));
    if (delay < Millis(0)) return std::nullopt;  // not a duration: reported
    if (delay > kMaxBatchDelay) {
      error(valueMark(*f), fields.label("batch_delay") + " must be at most " +
                               std::to_string(kMaxBatchDelay.count()) +
                               "ms (it is added to every line's latency)");
      return std::nullopt;
    }
    return delay;
  }

  // Reads `name` for an input or output entry.
  void readName(const Fields& fields, std::string_view noun, std::string& name) {
    const Field* f = yaml_.scalar(fields, "name", "a string");
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
    Fields fields = yaml_.readMap(entry, kInputKeys, where, "");
    if (yaml_.require(fields, "name", where)) readName(fields, "input", input.name);
    if (yaml_.require(fields, "paths", where)) {
      yaml_.readStringList(fields, "paths", input.paths, [](const std::string& path) {
        if (path.front() == '/') return std::string();
        return "path " + quote(path) + " must be absolute";
      });
      const Field* paths = fields.find("paths");
      if (paths->value.IsSequence() && paths->value.size() == 0) {
        error(valueMark(*paths), "'paths' must list at least one path");
      }
    }
    yaml_.readStringList(fields, "exclude", input.exclude);
    yaml_.readEnum<StartAt>(fields, "start_at", kStartAt, input.start_at);
    yaml_.readSize(fields, "max_line_bytes", input.max_line_bytes, 1);
    yaml_.readBool(fields, "poll", input.poll);
    yaml_.readDuration(fields, "poll_interval", input.poll_interval, Millis(1));
    yaml_.readDuration(fields, "rescan_interval", input.rescan_interval, Millis(1));
    input.batch_delay = readBatchDelay(fields);
    yaml_.readDuration(fields, "partial_line_timeout", input.partial_line_timeout, Millis(1));
    yaml_.readDuration(fields, "rotate_wait", input.rotate_wait, Millis(0));
    yaml_.readBool(fields, "copy", input.copy);
    std::string retention_where = "in 'rotated_retention' of " + label;
    if (auto retention = yaml_.subMap(fields, "rotated_retention", kRetentionKeys, retention_where,
                                      "rotated_retention.")) {
      yaml_.readSize(*retention, "max_bytes", input.rotated_retention.max_bytes, 0);
      yaml_.readDuration(*retention, "max_age", input.rotated_retention.max_age, Millis(0));
    }
    parseEventInputKeys(yaml_, fields, input, label);
    return input;
  }

  static OutputType peekType(const YAML::Node& entry) {
    YAML::Node type = peek(entry, "type");
    if (!type.IsDefined() || !type.IsScalar()) return OutputType::kUnknown;
    if (type.Scalar() == "tcp") return OutputType::kTcp;
    if (type.Scalar() == "archive") return OutputType::kArchive;
    if (type.Scalar() == "kafka") return OutputType::kKafka;
    if (type.Scalar() == "logsplice") return OutputType::kLogsplice;
    if (type.Scalar() == "relp") return OutputType::kRelp;
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
          return yaml_.readMap(entry, kOutputKeys, where, "", {kTcpKeys}, kArchiveKeys, "archive");
        case OutputType::kArchive:
          return yaml_.readMap(entry, kOutputKeys, where, "", {kArchiveKeys}, kTcpKeys, "tcp");
        case OutputType::kKafka:
          return yaml_.readMap(entry, kOutputKeys, where, "", {kafkaKeys()});
        case OutputType::kLogsplice:
          return yaml_.readMap(entry, kOutputKeys, where, "", {kLogspliceKeys}, kArchiveKeys,
                               "archive");
        case OutputType::kRelp:
          return yaml_.readMap(entry, kOutputKeys, where, "", {kRelpKeys}, kArchiveKeys, "archive");
        case OutputType::kUnknown:
          break;
      }
      // Without a known type, accept the keys of every type; the type error says enough.
      return yaml_.readMap(entry, kOutputKeys, where, "", {kTcpKeys, kArchiveKeys, kafkaKeys(), kLogspliceKeys, kRelpKeys});
    }();
    if (yaml_.require(fields, "name", where)) readName(fields, "output", output.name);
    if (yaml_.require(fields, "type", where)) {
      const Field* f = yaml_.scalar(fields, "type", "tcp, relp, archive, kafka or logsplice");
      if (f != nullptr && type == OutputType::kUnknown) {
        error(valueMark(*f), "unknown output type " + quote(f->value.Scalar()) +
                                 " (expected tcp, relp, archive, kafka or logsplice)");
      }
    }
    if (yaml_.require(fields, "inputs", where)) {
      yaml_.readStringList(fields, "inputs", output.inputs, nullptr, &output.input_marks);
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
      case OutputType::kKafka:
        parseKafkaKeys(yaml_, fields, output.kind.emplace<KafkaOutput>(), label);
        break;
      case OutputType::kLogsplice: {
        LogspliceOutput ls;
        ls.tcp = parseTcp(fields, label);
        parseLogspliceOutputKeys(yaml_, fields, "in " + label, ls);
        output.kind = std::move(ls);
        break;
      }
      case OutputType::kRelp: {
        RelpOutput relp;
        relp.tcp = parseTcp(fields, label, relpTransportDefaults());
        parseRelpKeys(yaml_, fields, relp);
        output.kind = std::move(relp);
        break;
      }
      case OutputType::kUnknown:
        break;  // kept, so that its name and routes are still checked
    }
    return output;
  }

  TcpOutput parseTcp(const Fields& fields, const std::string& label, TcpOutput tcp = {}) {
    std::string where = "in " + label;
    if (yaml_.require(fields, "addresses", where)) {
      std::vector<std::string> texts;
      yaml_.readStringList(fields, "addresses", texts, [](const std::string& address) {
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
    if (auto backoff = yaml_.subMap(fields, "backoff", kBackoffKeys, backoff_where, "backoff.")) {
      yaml_.readDuration(*backoff, "initial", tcp.backoff.initial, Millis(1));
      yaml_.readDuration(*backoff, "max", tcp.backoff.max, Millis(1));
    }
    yaml_.readDuration(fields, "connect_timeout", tcp.connect_timeout, Millis(1));
    // TCP_KEEPIDLE counts whole seconds, and 0 is refused by the kernel.
    yaml_.readDuration(fields, "keepalive", tcp.keepalive, Millis(1000));
    parseEventTcpKeys(yaml_, fields, tcp);
    if (const Field* f = fields.find("tls")) parseTlsKeys(yaml_, f->value, tcp.tls.emplace());
    return tcp;
  }

  ArchiveOutput parseArchive(const Fields& fields, const std::string& label) {
    ArchiveOutput archive;
    std::string where = "in " + label;
    if (yaml_.require(fields, "dir", where)) yaml_.readString(fields, "dir", archive.dir);
    std::string rotate_where = "in 'rotate' of " + label;
    if (auto rotate = yaml_.subMap(fields, "rotate", kRotateKeys, rotate_where, "rotate.")) {
      yaml_.readSize(*rotate, "max_bytes", archive.rotate_max_bytes, 1);
      yaml_.readDuration(*rotate, "max_age", archive.rotate_max_age, Millis(1));
    }
    yaml_.readEnum<FsyncPolicy>(fields, "fsync", kFsync, archive.fsync);
    yaml_.readDuration(fields, "fsync_interval", archive.fsync_interval, Millis(1));
    return archive;
  }

  YamlReader yaml_;
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
