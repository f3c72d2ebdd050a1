#include "agent/route_table.h"

namespace logsplice::agent {

Cursor& FileRoute::route(uint32_t sink_id, Cursor c) {
  if (sink_id >= cursors.size()) cursors.resize(sink_id + 1);
  c.routed = true;
  cursors[sink_id] = c;
  return cursors[sink_id];
}

size_t FileRoute::routedSinks() const {
  size_t n = 0;
  for (const Cursor& c : cursors) n += c.routed ? 1 : 0;
  return n;
}

SinkSlot& RouteTable::addSink(std::unique_ptr<outputs::Sink> sink) {
  auto id = static_cast<uint32_t>(sinks_.size());
  sink->setId(id);
  sinks_.emplace_back();
  sinks_.back().sink = std::move(sink);
  return sinks_.back();
}

SinkSlot* RouteTable::slotByName(const std::string& name) {
  for (SinkSlot& s : sinks_) {
    if (s.sink && !s.removing && s.sink->name() == name) return &s;
  }
  return nullptr;
}

std::unique_ptr<outputs::Sink> RouteTable::eraseSink(uint32_t id) {
  if (id >= sinks_.size() || !sinks_[id].sink) return nullptr;
  std::unique_ptr<outputs::Sink> sink = std::move(sinks_[id].sink);
  sinks_[id] = SinkSlot{};
  for (auto& [file_id, fs] : files_) fs.unroute(id);
  return sink;
}

}  // namespace logsplice::agent
