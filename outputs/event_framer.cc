#include "outputs/event_framer.h"

namespace logsplice::outputs {

EventFramer::EventFramer(const config::AgentConfig& agent, const config::TcpOutput& tcp,
                         const std::vector<config::InputConfig>& inputs, sys::Clock& clock)
    : agent_(agent), tcp_(tcp), clock_(clock), read_time_us_(clock.unixMicros()) {
  for (const config::InputConfig& in : inputs) addInput(in);
}

EventFramer::PerInput& EventFramer::addInput(config::InputConfig input) {
  auto per = std::make_unique<PerInput>();
  per->input = std::move(input);
  per->encoder = std::make_unique<format::EventEncoder>(
      tcp_.format, tcp_.framing, format::contextFor(agent_, per->input, tcp_));
  inputs_.push_back(std::move(per));
  return *inputs_.back();
}

format::EventEncoder& EventFramer::encoderFor(const SourceInfo* source) {
  static const std::string kNone;
  const std::string& name = source ? source->input : kNone;
  // The pointer alone could name a new SourceInfo at a freed one's address: the name decides.
  if (source == cached_source_ && cached_encoder_ != nullptr && *cached_name_ == name) {
    return *cached_encoder_;
  }
  PerInput* found = nullptr;
  for (auto& per : inputs_) {
    if (per->input.name == name) {
      found = per.get();
      break;
    }
  }
  if (found == nullptr) {
    // An input this output was not built for (a route added since): frame it by its name.
    config::InputConfig in;
    in.name = name;
    found = &addInput(std::move(in));
  }
  cached_source_ = source;
  cached_name_ = &found->input.name;
  cached_encoder_ = found->encoder.get();
  return *cached_encoder_;
}

void EventFramer::frame(const LineView& line, std::string& out) {
  format::Event event;
  event.message = line.bytes;
  if (line.source) event.file = line.source->path;
  event.offset = line.offset;
  event.read_time_us = read_time_us_;
  event.partial = line.partial || line.piece;
  invalid_utf8_ += encoderFor(line.source).append(event, out);
}

}  // namespace logsplice::outputs
