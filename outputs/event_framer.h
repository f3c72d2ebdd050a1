#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "outputs/format/encoder.h"
#include "outputs/framer.h"
#include "outputs/per_input_cache.h"
#include "sys/clock.h"

namespace logsplice::outputs {

// The Framer of the event outputs (`format: syslog | json`): each line or multiline event
// becomes a format::Event (message, file path, offset, read time, partial) appended through the
// EventEncoder of its input: one encoder per input routed to the output, since host, app name,
// input and fields are fixed per (output, input) pair (found through a PerInputCache).
//
// The framer keeps its own copies of the configs it was built from (an encoder's context views
// them): a reload replaces the agent's config, never what a running sink points into.
class EventFramer : public Framer {
 public:
  // `inputs`: the inputs routed to this output (others are framed as an input with that name
  // and no fields). `format` of `tcp` must not be raw.
  EventFramer(const config::AgentConfig& agent, const config::TcpOutput& tcp,
              const std::vector<config::InputConfig>& inputs,
              sys::Clock& clock = sys::Clock::real());

  void beginBatch() override { read_time_us_ = clock_.unixMicros(); }
  void frame(const LineView& line, std::string& out) override;
  uint64_t invalidUtf8() const override { return invalid_utf8_; }

 private:
  struct PerInput {
    config::InputConfig input;  // owned: the context views its name and fields
    std::unique_ptr<format::EventEncoder> encoder;
  };
  std::unique_ptr<PerInput> makeInput(config::InputConfig input) const;

  config::AgentConfig agent_;
  config::TcpOutput tcp_;
  sys::Clock& clock_;
  PerInputCache<PerInput> inputs_;
  int64_t read_time_us_ = 0;
  uint64_t invalid_utf8_ = 0;
};

}  // namespace logsplice::outputs
