#include "config/units.h"

#include <array>
#include <charconv>
#include <limits>
#include <string>
#include <utility>

namespace logsplice::config {
namespace {

constexpr uint64_t kKi = 1024;
constexpr uint64_t kKb = 1000;

// Every size suffix we accept. "k", "m" and "g" are shorthands for the binary units, as in
// most tools that take buffer sizes (and unlike the SI "KB", "MB", "GB").
constexpr std::array<std::pair<std::string_view, uint64_t>, 18> kSizeUnits = {{
    {"", 1},
    {"B", 1},
    {"KiB", kKi},
    {"MiB", kKi* kKi},
    {"GiB", kKi* kKi* kKi},
    {"TiB", kKi* kKi* kKi* kKi},
    {"KB", kKb},
    {"MB", kKb* kKb},
    {"GB", kKb* kKb* kKb},
    {"TB", kKb* kKb* kKb* kKb},
    {"k", kKi},
    {"K", kKi},
    {"m", kKi* kKi},
    {"M", kKi* kKi},
    {"g", kKi* kKi* kKi},
    {"G", kKi* kKi* kKi},
    {"t", kKi* kKi* kKi* kKi},
    {"T", kKi* kKi* kKi* kKi},
}};

constexpr std::array<std::pair<std::string_view, uint64_t>, 5> kDurationUnits = {{
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
    {"d", 24 * 60 * 60 * 1000},
}};

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isSpace(char c) {
  return c == ' ' || c == '\t';
}
bool isLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Reads the leading run of digits of `s` into `out`. Returns how many characters were used,
// 0 when `s` does not start with a digit, or npos when the number does not fit in 64 bits.
size_t readNumber(std::string_view s, uint64_t& out) {
  size_t n = 0;
  while (n < s.size() && isDigit(s[n])) ++n;
  if (n == 0) return 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, out);
  if (ec != std::errc()) return std::string_view::npos;
  return n;
}

sys::Error sizeError(std::string_view text) {
  return sys::Error::invalidConfig("invalid size '" + std::string(text) +
                                   "' (use a number with B, KiB, MiB, GiB, KB, MB, GB)");
}

sys::Error durationError(std::string_view text) {
  return sys::Error::invalidConfig("invalid duration '" + std::string(text) +
                                   "' (use a number with ms, s, m, h or d, e.g. 250ms, 5s, 1h30m)");
}

}  // namespace

sys::Result<uint64_t> parseSize(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return sys::Error::invalidConfig("empty size (use e.g. 64KiB or 1MiB)");
  if (s.front() == '-') {
    return sys::Error::invalidConfig("size '" + std::string(s) + "' must not be negative");
  }
  uint64_t number = 0;
  size_t used = readNumber(s, number);
  if (used == std::string_view::npos) {
    return sys::Error::invalidConfig("size '" + std::string(s) + "' is too large");
  }
  if (used == 0) return sizeError(s);
  std::string_view unit = trim(s.substr(used));
  if (!unit.empty() && unit.front() == '.') {
    return sys::Error::invalidConfig("size '" + std::string(s) +
                                     "' must be a whole number (use a smaller unit, e.g. 1536MiB)");
  }
  for (const auto& [suffix, multiplier] : kSizeUnits) {
    if (unit != suffix) continue;
    if (number > std::numeric_limits<uint64_t>::max() / multiplier) {
      return sys::Error::invalidConfig("size '" + std::string(s) + "' is too large");
    }
    return number * multiplier;
  }
  return sizeError(s);
}

sys::Result<Millis> parseDuration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return sys::Error::invalidConfig("empty duration (use e.g. 250ms, 5s or 1h30m)");
  if (s.front() == '-') {
    return sys::Error::invalidConfig("duration '" + std::string(s) + "' must not be negative");
  }
  // The largest total we accept, so that the result fits in Millis (a signed 64-bit count).
  constexpr uint64_t kMaxMillis = static_cast<uint64_t>(std::numeric_limits<Millis::rep>::max());
  uint64_t total = 0;
  std::string_view rest = s;
  while (!rest.empty()) {
    uint64_t number = 0;
    size_t used = readNumber(rest, number);
    if (used == std::string_view::npos) {
      return sys::Error::invalidConfig("duration '" + std::string(s) + "' is too long");
    }
    if (used == 0) return durationError(s);
    rest.remove_prefix(used);
    size_t letters = 0;
    while (letters < rest.size() && isLetter(rest[letters])) ++letters;
    std::string_view unit = rest.substr(0, letters);
    if (unit.empty()) {
      if (rest.empty() && total == 0 && used == s.size()) {
        return sys::Error::invalidConfig("duration '" + std::string(s) +
                                         "' needs a unit (ms, s, m, h or d), e.g. '" +
                                         std::string(s) + "s'");
      }
      return durationError(s);
    }
    uint64_t multiplier = 0;
    for (const auto& [suffix, millis] : kDurationUnits) {
      if (unit == suffix) multiplier = millis;
    }
    if (multiplier == 0) return durationError(s);
    if (number > (kMaxMillis - total) / multiplier) {
      return sys::Error::invalidConfig("duration '" + std::string(s) + "' is too long");
    }
    total += number * multiplier;
    rest.remove_prefix(letters);
  }
  return Millis(static_cast<Millis::rep>(total));
}

}  // namespace logsplice::config
