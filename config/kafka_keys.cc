#include "config/kafka_keys.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <memory>

#include "sys/host_port.h"

namespace logsplice::config {
namespace {

constexpr std::string_view kKafkaKeys[] = {
    "brokers", "topic",   "key",       "compression", "acks", "idempotence", "max_in_flight_bytes",
    "format",  "headers", "librdkafka"};

constexpr std::pair<std::string_view, KafkaKey> kKeys[] = {{"none", KafkaKey::kNone},
                                                           {"host", KafkaKey::kHost},
                                                           {"file", KafkaKey::kFile},
                                                           {"host_file", KafkaKey::kHostFile}};
constexpr std::pair<std::string_view, std::string_view> kCompressions[] = {
    {"none", "none"}, {"lz4", "lz4"}, {"zstd", "zstd"}, {"snappy", "snappy"}, {"gzip", "gzip"}};
constexpr std::pair<std::string_view, std::string_view> kAcks[] = {
    {"all", "all"}, {"1", "1"}, {"0", "0"}};
constexpr std::pair<std::string_view, EventFormat> kFormats[] = {{"raw", EventFormat::kRaw},
                                                                 {"json", EventFormat::kJson}};

// Properties the output sets itself: the typed keys say them, and the delivery reports must
// reach the loop the way the sink expects.
constexpr std::string_view kOwnProperties[] = {"bootstrap.servers",
                                               "metadata.broker.list",
                                               "compression.codec",
                                               "compression.type",
                                               "acks",
                                               "request.required.acks",
                                               "enable.idempotence",
                                               "dr_msg_cb",
                                               "dr_cb",
                                               "delivery.report.only.error"};

bool isTopicChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// "" when the template is fine: topic characters and the placeholders ${input} and ${host}.
std::string topicProblem(const std::string& t) {
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 2, "${") == 0) {
      size_t close = t.find('}', i);
      if (close == std::string::npos) return "unterminated '${' in topic " + quote(t);
      std::string name = t.substr(i + 2, close - i - 2);
      if (name != "input" && name != "host") {
        return "unknown placeholder '${" + name + "}' in topic (use ${input} or ${host})";
      }
      i = close + 1;
      continue;
    }
    if (!isTopicChar(t[i])) {
      return "topic " + quote(t) + " may only contain letters, digits, '.', '_' and '-'";
    }
    ++i;
  }
  return {};
}

std::string scalarText(const YAML::Node& n) {
  return n.IsScalar() ? n.Scalar() : std::string();
}

}  // namespace

std::span<const std::string_view> kafkaKeys() {
  return kKafkaKeys;
}

std::string kafkaTopicFor(const std::string& topic_template, std::string_view input,
                          std::string_view host) {
  std::string out;
  out.reserve(topic_template.size());
  for (size_t i = 0; i < topic_template.size();) {
    if (topic_template.compare(i, 8, "${input}") == 0) {
      out += input;
      i += 8;
    } else if (topic_template.compare(i, 7, "${host}") == 0) {
      out += host;
      i += 7;
    } else {
      out += topic_template[i++];
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> kafkaProperties(const KafkaOutput& kafka,
                                                                 const std::string& host) {
  std::vector<std::pair<std::string, std::string>> p;
  std::string brokers;
  for (const std::string& b : kafka.brokers) brokers += (brokers.empty() ? "" : ",") + b;
  p.emplace_back("bootstrap.servers", brokers);
  p.emplace_back("client.id", "logsplice@" + host);
  p.emplace_back("compression.codec", kafka.compression);
  p.emplace_back("acks", kafka.acks);
  p.emplace_back("enable.idempotence", kafka.idempotence ? "true" : "false");
  // librdkafka's queue is bounded by max_in_flight_bytes, half of it payload (headers and
  // per-message bookkeeping come on top), so an outage fills it and the file is the buffer.
  uint64_t kbytes = std::max<uint64_t>(kafka.max_in_flight_bytes / 2 / 1024, 1);
  p.emplace_back("queue.buffering.max.kbytes", std::to_string(kbytes));
  uint64_t messages = std::max<uint64_t>(kafka.max_in_flight_bytes / 1024, 64);
  p.emplace_back("queue.buffering.max.messages", std::to_string(messages));
  p.emplace_back("linger.ms", "5");
  // The broker count of /metrics comes from librdkafka's statistics.
  p.emplace_back("statistics.interval.ms", "1000");
  for (const auto& kv : kafka.librdkafka) p.push_back(kv);
  return p;
}

void parseKafkaKeys(YamlReader& yaml, const Fields& fields, KafkaOutput& kafka,
                    const std::string& label) {
  const std::string where = "in " + label;
  if (yaml.require(fields, "brokers", where)) {
    yaml.readStringList(fields, "brokers", kafka.brokers, [](const std::string& address) {
      sys::Result<sys::HostPort> parsed = sys::parseHostPort(address);
      return parsed.ok() ? std::string() : parsed.error().context();
    });
    const Field* f = fields.find("brokers");
    if (f->value.IsSequence() && f->value.size() == 0) {
      yaml.error(YamlReader::valueMark(*f), "'brokers' must list at least one host:port");
    }
  }
  if (yaml.require(fields, "topic", where)) {
    yaml.readString(fields, "topic", kafka.topic);
    if (const Field* f = fields.find("topic"); f != nullptr && f->value.IsScalar()) {
      if (std::string problem = topicProblem(kafka.topic); !problem.empty()) {
        yaml.error(YamlReader::valueMark(*f), problem);
      }
    }
  }
  yaml.readEnum<KafkaKey>(fields, "key", kKeys, kafka.key);
  std::string_view compression = "none";
  yaml.readEnum<std::string_view>(fields, "compression", kCompressions, compression);
  kafka.compression = std::string(compression);
  std::string_view acks = "all";
  yaml.readEnum<std::string_view>(fields, "acks", kAcks, acks);
  kafka.acks = std::string(acks);
  yaml.readBool(fields, "idempotence", kafka.idempotence);
  if (kafka.idempotence && kafka.acks != "all") {
    const Field* f = fields.find("acks");
    yaml.error(YamlReader::valueMark(*f),
               "'acks: " + kafka.acks +
                   "' needs 'idempotence: false' (the idempotent producer "
                   "requires acks: all) " +
                   where);
  }
  yaml.readSize(fields, "max_in_flight_bytes", kafka.max_in_flight_bytes, 64 * 1024);
  yaml.readEnum<EventFormat>(fields, "format", kFormats, kafka.format);
  yaml.readBool(fields, "headers", kafka.headers);

  const Field* lib = fields.find("librdkafka");
  if (lib == nullptr) return;
  if (!lib->value.IsMap()) {
    yaml.error(YamlReader::valueMark(*lib), "'librdkafka' must be a map of property: value");
    return;
  }
  // A scratch configuration: librdkafka itself says which properties and values it takes.
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> conf(rd_kafka_conf_new(),
                                                                    rd_kafka_conf_destroy);
  for (const auto& kv : lib->value) {
    const Mark key_mark = toMark(kv.first.Mark());
    const std::string name = scalarText(kv.first);
    if (!kv.second.IsScalar()) {
      yaml.error(kv.second.IsNull() ? key_mark : toMark(kv.second.Mark()),
                 "librdkafka property " + quote(name) + " needs a value (a string or number)");
      continue;
    }
    if (std::find(std::begin(kOwnProperties), std::end(kOwnProperties), name) !=
        std::end(kOwnProperties)) {
      yaml.error(key_mark, "librdkafka property " + quote(name) +
                               " is set by the output itself; use its own keys " + where);
      continue;
    }
    char err[512] = {};
    rd_kafka_conf_res_t res =
        rd_kafka_conf_set(conf.get(), name.c_str(), kv.second.Scalar().c_str(), err, sizeof err);
    if (res != RD_KAFKA_CONF_OK) {
      // An unknown property is pointed at by its name, a refused value by the value.
      yaml.error(res == RD_KAFKA_CONF_UNKNOWN ? key_mark : toMark(kv.second.Mark()),
                 "librdkafka: " + std::string(err) + " " + where);
      continue;
    }
    kafka.librdkafka.emplace_back(name, kv.second.Scalar());
    kafka.librdkafka_marks.push_back(key_mark);
  }
}

}  // namespace logsplice::config
