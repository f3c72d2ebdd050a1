#include "outputs/format/timestamp.h"

#include <algorithm>

namespace logsplice::outputs::format {
namespace {

// Days since 1970-01-01 -> civil date (proleptic Gregorian), valid for every int64 day count
// we can meet; avoids gmtime_r's locking of the time zone state.
void civilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += (m <= 2);
}

void put2(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

void TimestampWriter::append(int64_t unix_us, std::string& out) {
  if (unix_us == last_us_) {
    out.append(last_, kLength);
    return;
  }
  // Floor division, so that times before 1970 still get a fraction in 0..999999.
  int64_t second = unix_us / 1000000;
  int64_t micros = unix_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    second -= 1;
  }
  if (second != cached_second_) {
    int64_t days = second / 86400;
    int64_t rem = second % 86400;
    if (rem < 0) {
      rem += 86400;
      days -= 1;
    }
    int64_t year = 0;
    unsigned month = 0;
    unsigned day = 0;
    civilFromDays(days, year, month, day);
    // RFC 3339 has four year digits; clamp what cannot be written (a broken clock).
    if (year < 0) year = 0;
    if (year > 9999) year = 9999;
    auto y = static_cast<unsigned>(year);
    put2(cached_, y / 100);
    put2(cached_ + 2, y % 100);
    cached_[4] = '-';
    put2(cached_ + 5, month);
    cached_[7] = '-';
    put2(cached_ + 8, day);
    cached_[10] = 'T';
    put2(cached_ + 11, static_cast<unsigned>(rem / 3600));
    cached_[13] = ':';
    put2(cached_ + 14, static_cast<unsigned>(rem / 60 % 60));
    cached_[16] = ':';
    put2(cached_ + 17, static_cast<unsigned>(rem % 60));
    cached_[19] = '.';
    cached_second_ = second;
  }
  char buf[kLength];
  std::copy(cached_, cached_ + 20, buf);
  auto us = static_cast<unsigned>(micros);
  for (int i = 25; i >= 20; --i) {
    buf[i] = static_cast<char>('0' + us % 10);
    us /= 10;
  }
  buf[26] = 'Z';
  std::copy(buf, buf + kLength, last_);
  last_us_ = unix_us;
  out.append(buf, kLength);
}

}  // namespace logsplice::outputs::format
