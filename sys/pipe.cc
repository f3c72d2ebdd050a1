#include "sys/pipe.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace logsplice::sys {

Result<Pipe> Pipe::create(size_t want_bytes) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return Error::fromErrno(errno, "pipe2");
  Pipe p;
  p.read_.reset(fds[0]);
  p.write_.reset(fds[1]);
  int current = ::fcntl(fds[1], F_GETPIPE_SZ);
  if (want_bytes > 0 && current >= 0 && static_cast<size_t>(current) != want_bytes) {
    // EPERM past pipe-max-size or the per-user budget: keep what we have.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(want_bytes));
  }
  int got = ::fcntl(fds[1], F_GETPIPE_SZ);
  if (got < 0) return Error::fromErrno(errno, "F_GETPIPE_SZ");
  p.capacity_ = static_cast<size_t>(got);
  return p;
}

size_t Pipe::queued() const {
  int n = 0;
  if (!read_.valid() || ::ioctl(read_.get(), FIONREAD, &n) != 0 || n < 0) return 0;
  return static_cast<size_t>(n);
}

}  // namespace logsplice::sys
