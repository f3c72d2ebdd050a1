#pragma once

#include <cstdint>
#include <string_view>

#include "sys/error.h"
#include "config/config.h"

namespace logsplice::config {

// "1024", "64KiB", "1MiB", "2GiB", "10KB", "1MB" (KB/MB/GB are powers of 1000, KiB.. of 1024).
// Also accepts "k", "m", "g" suffixes as KiB/MiB/GiB. Errors name what was wrong.
sys::Result<uint64_t> parseSize(std::string_view text);

// "250ms", "5s", "1m", "1h", "1d", or a combination like "1h30m"; a bare number is an error.
sys::Result<Millis> parseDuration(std::string_view text);

}  // namespace logsplice::config
