#include "inputs/follow_open.h"

#include <fcntl.h>

#include <cerrno>

namespace logsplice::inputs {

int openFollowed(const char* path) {
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  int fd = ::open(path, kFlags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path, kFlags);
  return fd;
}

}  // namespace logsplice::inputs
