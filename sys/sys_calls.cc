#include "sys/sys_calls.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace logsplice::sys {
namespace {

SysResult wrap(ssize_t r) {
  return SysResult{r, r < 0 ? errno : 0};
}

}  // namespace

SysResult SysCalls::splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                           unsigned flags) {
  return wrap(::splice(fd_in, off_in, fd_out, off_out, len, flags));
}

SysResult SysCalls::tee(int fd_in, int fd_out, size_t len, unsigned flags) {
  return wrap(::tee(fd_in, fd_out, len, flags));
}

SysResult SysCalls::pread(int fd, void* buf, size_t len, off_t offset) {
  return wrap(::pread(fd, buf, len, offset));
}

SysResult SysCalls::write(int fd, const void* buf, size_t len) {
  return wrap(::write(fd, buf, len));
}

SysResult SysCalls::pwrite(int fd, const void* buf, size_t len, off_t offset) {
  return wrap(::pwrite(fd, buf, len, offset));
}

SysResult SysCalls::preadv2(int fd, void* buf, size_t len, off_t offset, int flags) {
  struct iovec v{buf, len};
  return wrap(::preadv2(fd, &v, 1, offset, flags));
}

SysResult SysCalls::fdatasync(int fd) {
  return wrap(::fdatasync(fd));
}

SysResult SysCalls::writev(int fd, const struct iovec* iov, int iovcnt) {
  return wrap(::writev(fd, iov, iovcnt));
}

SysCalls& SysCalls::real() {
  static SysCalls instance;
  return instance;
}

}  // namespace logsplice::sys
