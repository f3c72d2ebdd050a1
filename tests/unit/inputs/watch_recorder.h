#pragma once

// A WatchHandler that records what a watcher (or Discovery) reports, for the watcher tests.

#include <string>
#include <vector>

#include "inputs/watcher.h"

namespace logsplice::inputs::testing {

class WatchRecorder : public WatchHandler {
 public:
  std::vector<Event> events;
  int batches = 0;
  int overflows = 0;

  void changed(const std::vector<Event>& batch) override {
    ++batches;
    events.insert(events.end(), batch.begin(), batch.end());
  }
  void overflowed() override { ++overflows; }

  // Whether an event of `kind` about `name` in `dir` was seen.
  bool saw(const std::string& dir, const std::string& name, Kind kind) const {
    for (const auto& e : events) {
      if (e.dir == dir && e.name == name && e.kind == kind) return true;
    }
    return false;
  }
  const Event* find(const std::string& name, Kind kind) const {
    for (const auto& e : events) {
      if (e.name == name && e.kind == kind) return &e;
    }
    return nullptr;
  }
};

}  // namespace logsplice::inputs::testing
