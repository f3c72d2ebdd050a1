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
  char name[48];
  if (collision == 0) {
    std::snprintf(name, sizeof name, "%02d%02d%02d.log", tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    std::snprintf(name, sizeof name, "%02d%02d%02d-%d.log", tm.tm_hour, tm.tm_min, tm.tm_sec,
                  collision);
  }
  return name;
}

}  // namespace logsplice::outputs
