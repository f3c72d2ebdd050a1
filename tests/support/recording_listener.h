#pragma once

// A SinkListener that records what a sink reports (the router's side of the contract), for the
// outputs tests that drive one sink by hand.

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "outputs/sink.h"

namespace logsplice::testing {

class RecordingListener : public outputs::SinkListener {
 public:
  struct Delivery {
    std::string sink;
    uint64_t file_id, generation, offset_end;
  };
  std::vector<Delivery> deliveries;
  std::map<uint64_t, uint64_t> delivered;  // file id -> furthest offset reported
  int ready = 0;
  std::vector<std::vector<Rewind>> rewinds;
  std::function<void(const std::vector<Rewind>&)> on_rewind;

  void sinkDelivered(outputs::Sink& sink, uint64_t file_id, uint64_t generation,
                     uint64_t offset_end) override {
    deliveries.push_back({sink.name(), file_id, generation, offset_end});
    uint64_t& d = delivered[file_id];
    if (offset_end > d) d = offset_end;
  }
  void sinkReady(outputs::Sink&) override { ++ready; }
  // (file id, offset) of each sinkHolds.
  std::vector<std::pair<uint64_t, uint64_t>> holds;
  void sinkHolds(outputs::Sink&, uint64_t file_id, uint64_t, uint64_t offset) override {
    holds.emplace_back(file_id, offset);
  }
  void sinkRewound(outputs::Sink&, const std::vector<Rewind>& r) override {
    rewinds.push_back(r);
    if (on_rewind) on_rewind(r);
  }
  uint64_t deliveredOf(uint64_t file_id) const {
    auto it = delivered.find(file_id);
    return it == delivered.end() ? 0 : it->second;
  }
};

}  // namespace logsplice::testing
