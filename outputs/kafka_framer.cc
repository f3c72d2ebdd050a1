#include "outputs/kafka_framer.h"

#include <algorithm>

#include "config/kafka_keys.h"

namespace logsplice::outputs {

bool readKafkaFrame(const char* p, size_t avail, KafkaFrame& out) {
  KafkaFrameHeader h;
  if (avail < sizeof h) return false;
  std::memcpy(&h, p, sizeof h);
  const size_t size =
      sizeof h + size_t{h.topic_len} + h.key_len + h.input_len + h.path_len + h.value_len;
  if (size > avail) return false;
  const char* q = p + sizeof h;
  auto take = [&q](size_t n) {
    std::string_view v(q, n);
    q += n;
    return v;
  };
  out.topic = take(h.topic_len);
  out.key = take(h.key_len);
  out.input = take(h.input_len);
  out.path = take(h.path_len);
  out.value = take(h.value_len);
  out.offset = h.offset;
  out.size = size;
  return true;
}

KafkaFramer::KafkaFramer(const config::AgentConfig& agent, const config::KafkaOutput& kafka,
                         const std::vector<config::InputConfig>& inputs, sys::Clock& clock)
    : agent_(agent), kafka_(kafka), clock_(clock), read_time_us_(clock.unixMicros()) {
  json_.format = config::EventFormat::kJson;
  json_.framing = config::Framing::kLf;
  for (const config::InputConfig& in : inputs) inputs_.add(makeInput(in));
}

std::unique_ptr<KafkaFramer::PerInput> KafkaFramer::makeInput(config::InputConfig input) const {
  auto per = std::make_unique<PerInput>();
  per->input = std::move(input);
  per->topic = config::kafkaTopicFor(kafka_.topic, per->input.name, agent_.hostname);
  if (kafka_.format == config::EventFormat::kJson) {
    per->encoder =
        std::make_unique<format::EventEncoder>(config::EventFormat::kJson, config::Framing::kLf,
                                               format::contextFor(agent_, per->input, json_));
  }
  return per;
}

void KafkaFramer::frame(const LineView& line, std::string& out) {
  PerInput& per = inputs_.of(line.source, [this](config::InputConfig in) {
    return makeInput(std::move(in));
  });
  static const std::string kNone;
  const std::string& path = line.source ? line.source->path : kNone;
  const std::string& host = agent_.hostname;
  KafkaFrameHeader h{};
  h.topic_len = static_cast<uint16_t>(std::min<size_t>(per.topic.size(), UINT16_MAX));
  h.input_len = static_cast<uint16_t>(std::min<size_t>(per.input.name.size(), UINT16_MAX));
  h.path_len = static_cast<uint32_t>(path.size());
  h.offset = line.offset;
  switch (kafka_.key) {
    case config::KafkaKey::kNone:
      h.key_len = 0;
      break;
    case config::KafkaKey::kHost:
      h.key_len = static_cast<uint32_t>(host.size());
      break;
    case config::KafkaKey::kFile:
      h.key_len = static_cast<uint32_t>(path.size());
      break;
    case config::KafkaKey::kHostFile:
      h.key_len = static_cast<uint32_t>(host.size() + 1 + path.size());
      break;
  }
  const size_t header_at = out.size();
  out.append(reinterpret_cast<const char*>(&h), sizeof h);
  out.append(per.topic, 0, h.topic_len);
  switch (kafka_.key) {
    case config::KafkaKey::kNone:
      break;
    case config::KafkaKey::kHost:
      out += host;
      break;
    case config::KafkaKey::kFile:
      out += path;
      break;
    case config::KafkaKey::kHostFile:
      out += host;
      out += ':';
      out += path;
      break;
  }
  out.append(per.input.name, 0, h.input_len);
  out += path;
  const size_t value_at = out.size();
  if (per.encoder) {
    format::Event event;
    event.message = line.bytes;
    event.file = path;
    event.offset = line.offset;
    event.read_time_us = read_time_us_;
    event.partial = line.partial || line.piece;
    invalid_utf8_ += per.encoder->append(event, out);
    if (out.size() > value_at && out.back() == '\n') out.pop_back();  // a message needs none
  } else {
    out.append(line.bytes);
  }
  h.value_len = static_cast<uint32_t>(out.size() - value_at);
  std::memcpy(out.data() + header_at, &h, sizeof h);
}

}  // namespace logsplice::outputs
