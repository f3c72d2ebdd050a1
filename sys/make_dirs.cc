#include "sys/make_dirs.h"

#include <sys/stat.h>

#include <cerrno>

namespace logsplice::sys {

Error makeDirs(const std::string& path, mode_t mode) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return Error::fromErrno(errno, "mkdir " + part);
    }
  }
  return Error::ok();
}

}  // namespace logsplice::sys
