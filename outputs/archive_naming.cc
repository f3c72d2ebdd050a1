#include "outputs/archive_naming.h"

#include <cstdio>

namespace logsplice::outputs {

std::string sanitizeComponent(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(c == '/' || u < 0x20 || u == 0x7f ? '_' : c);
  }
  if (out.empty() || out == "." || out == "..") return "_";
  return out;
}

std::string archiveDirFor(const std::string& dir, const std::string& input,
                          const std::string& source_name, std::time_t when) {
  struct tm tm {};
  gmtime_r(&when, &tm);
  char day[48];
  std::snprintf(day, sizeof day, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return dir + "/" + sanitizeComponent(input) + "/" + sanitizeComponent(source_name) + "/" + day;
}

std::string archiveFileName(std::time_t when, int collision) {
  struct tm tm {};
  gmtime_r(&when, &tm);
  // The counter: three digits up to 999, then a width letter ('a' for 4 digits, 'b' for 5, ...)
  // and the digits, so that byte order is numeric order (see the header).
  std::string digits = std::to_string(collision < 0 ? 0 : collision);
  std::string counter;
  if (digits.size() <= 3) {
    counter = std::string(3 - digits.size(), '0') + digits;
  } else {
    counter = static_cast<char>('a' + (digits.size() - 4)) + digits;  // int: at most 'g'
  }
  char name[48];
  std::snprintf(name, sizeof name, "%02d%02d%02d_%s.log", tm.tm_hour, tm.tm_min, tm.tm_sec,
                counter.c_str());
  return name;
}

}  // namespace logsplice::outputs
