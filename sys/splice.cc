#include "sys/splice.h"

#include <fcntl.h>

#include <cerrno>

namespace logsplice::sys {
namespace {

Result<size_t> finish(const SysResult& r, const char* what) {
  if (!r.failed()) return static_cast<size_t>(r.value);
  if (r.err == EAGAIN) return Error(ErrorCode::kWouldBlock, what, EAGAIN);
  return Error::fromErrno(r.err, what);
}

}  // namespace

Result<size_t> spliceFileToPipe(SysCalls& sys, int file_fd, uint64_t* offset, int pipe_wr,
                                size_t len) {
  for (;;) {
    loff_t off = static_cast<loff_t>(*offset);
    SysResult r = sys.splice(file_fd, &off, pipe_wr, nullptr, len, SPLICE_F_NONBLOCK);
    if (r.failed() && r.err == EINTR) continue;
    if (!r.failed()) *offset += static_cast<uint64_t>(r.value);
    return finish(r, "splice file->pipe");
  }
}

Result<size_t> splicePipeToFd(SysCalls& sys, int pipe_rd, int out_fd, uint64_t* out_offset,
                              size_t len, bool more) {
  unsigned flags = SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0u);
  for (;;) {
    loff_t off = out_offset ? static_cast<loff_t>(*out_offset) : 0;
    SysResult r = sys.splice(pipe_rd, nullptr, out_fd, out_offset ? &off : nullptr, len, flags);
    if (r.failed() && r.err == EINTR) continue;
    if (!r.failed() && out_offset) *out_offset += static_cast<uint64_t>(r.value);
    return finish(r, "splice pipe->fd");
  }
}

Result<size_t> teePipe(SysCalls& sys, int src_rd, int dst_wr, size_t len) {
  for (;;) {
    SysResult r = sys.tee(src_rd, dst_wr, len, SPLICE_F_NONBLOCK);
    if (r.failed() && r.err == EINTR) continue;
    return finish(r, "tee");
  }
}

}  // namespace logsplice::sys
