#pragma once

#include <cstdint>

#include "sys/clock.h"

namespace logsplice::testing {

// A clock that moves only when the test says so.
class FakeClock : public sys::Clock {
 public:
  uint64_t monotonicMs() const override { return mono_ms_; }
  int64_t unixMicros() const override { return unix_us_; }
  void advanceMs(uint64_t ms) {
    mono_ms_ += ms;
    unix_us_ += static_cast<int64_t>(ms) * 1000;
  }
  void setUnixSeconds(int64_t s) { unix_us_ = s * 1000000; }

 private:
  uint64_t mono_ms_ = 1000000;
  int64_t unix_us_ = 1767225600LL * 1000000;  // 2026-01-01T00:00:00Z
};

}  // namespace logsplice::testing
