#include "outputs/event_framer.h"

namespace logsplice::outputs {

EventFramer::EventFramer(const config::AgentConfig& agent, const config::TcpOutput& tcp,
                         const std::vector<config::InputConfig>& inputs, sys::Clock& clock)
    : agent_(agent), tcp_(tcp), clock_(clock), read_time_us_(clock.unixMicros()) {
  for (const config::InputConfig& in : inputs) inputs_.add(makeInput(in));
}

std::unique_ptr<EventFramer::PerInput> EventFramer::makeInput(config::InputConfig input) const {
  auto per = std::make_unique<PerInput>();
  per->input = std::move(input);
  per->encoder = std::make_unique<format::EventEncoder>(
      tcp_.format, tcp_.framing, format::contextFor(agent_, per->input, tcp_));
  return per;
}

void EventFramer::frame(const LineView& line, std::string& out) {
  format::Event event;
  event.message = line.bytes;
  if (line.source) event.file = line.source->path;
  event.offset = line.offset;
  event.read_time_us = read_time_us_;
  event.partial = line.partial || line.piece;
  PerInput& per = inputs_.of(line.source, [this](config::InputConfig in) {
    return makeInput(std::move(in));
  });
  invalid_utf8_ += per.encoder->append(event, out);
}

}  // namespace logsplice::outputs
