#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

namespace logsplice::sys {

// The one seam for time. Two readings, never mixed:
// - monotonicMs(): for intervals, timeouts and retry times (steady, never jumps);
// - unixSeconds() / unixMicros(): wall-clock time for what a person or a peer reads (archive
//   names, checkpoint entries' last-seen time, event timestamps).
// Components take a Clock& so that tests can move time by hand (FakeClock in tests/support).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t monotonicMs() const {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
  virtual int64_t unixMicros() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t unixSeconds() const { return unixMicros() / 1000000; }

  // The process-wide real clock.
  static Clock& real() {
    static Clock instance;
    return instance;
  }
};

}  // namespace logsplice::sys
