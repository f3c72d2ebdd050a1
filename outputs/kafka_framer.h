#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "outputs/format/encoder.h"
#include "outputs/framer.h"
#include "outputs/per_input_cache.h"
#include "sys/clock.h"

namespace logsplice::outputs {

// One Kafka message as the event sink holds it between framing and producing: a fixed header,
// then topic, key, input name, file path and value, so the sink can cut the framed bytes back
// into messages (KafkaSink::sendFramed) without any other bookkeeping. Host-endian: the bytes
// never leave the process.
struct KafkaFrameHeader {
  uint32_t value_len;
  uint32_t key_len;
  uint32_t path_len;
  uint16_t topic_len;
  uint16_t input_len;
  uint64_t offset;  // file offset of the event's first byte
};
static_assert(sizeof(KafkaFrameHeader) == 24);

// A framed message, viewed in place.
struct KafkaFrame {
  std::string_view topic, key, input, path, value;
  uint64_t offset = 0;
  size_t size = 0;  // framed bytes, header included
};

// Reads the frame at `p` (at most `avail` bytes); false when the bytes there are not one whole
// frame (a bug: frames are appended whole).
bool readKafkaFrame(const char* p, size_t avail, KafkaFrame& out);

// The Framer of the kafka output: value = the event (a line or a multiline event) as it is
// (`format: raw`), or the JSON object of the event outputs without its newline (`format:
// json`); key = none, the host, the file path, or "host:path"; topic = the output's topic with
// ${input} and ${host} replaced (per input, cached).
class KafkaFramer : public Framer {
 public:
  KafkaFramer(const config::AgentConfig& agent, const config::KafkaOutput& kafka,
              const std::vector<config::InputConfig>& inputs,
              sys::Clock& clock = sys::Clock::real());

  void beginBatch() override { read_time_us_ = clock_.unixMicros(); }
  void frame(const LineView& line, std::string& out) override;
  uint64_t invalidUtf8() const override { return invalid_utf8_; }

 private:
  struct PerInput {
    config::InputConfig input;
    std::string topic;
    std::unique_ptr<format::EventEncoder> encoder;  // format json only
  };
  std::unique_ptr<PerInput> makeInput(config::InputConfig input) const;

  config::AgentConfig agent_;
  config::KafkaOutput kafka_;
  config::TcpOutput json_;  // what the JSON encoder's context reads (app_name, facility)
  sys::Clock& clock_;
  PerInputCache<PerInput> inputs_;
  int64_t read_time_us_ = 0;
  uint64_t invalid_utf8_ = 0;
};

}  // namespace logsplice::outputs
