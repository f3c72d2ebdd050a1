#pragma once

#include <cstdint>
#include <string>

namespace logsplice::outputs::format {

// Writes unix microseconds as RFC 3339 UTC with six fraction digits,
// "2026-11-30T21:20:00.123456Z" (27 bytes; the form both RFC 5424 and the JSON events use).
// Events come in bursts within one second, so the "date and time" part is cached and only the
// microseconds are formatted per event. One per formatter; not thread-safe.
class TimestampWriter {
 public:
  static constexpr size_t kLength = 27;
  void append(int64_t unix_us, std::string& out);

 private:
  int64_t cached_second_ = INT64_MIN;
  char cached_[20] = {};  // "YYYY-MM-DDTHH:MM:SS."
  // The whole stamp of the last call: every event of one batch has the same read time.
  int64_t last_us_ = INT64_MIN;
  char last_[kLength] = {};
};

}  // namespace logsplice::outputs::format
