#pragma once

#include <cstddef>
#include <cstdint>

#include "sys/error.h"
#include "sys/sys_calls.h"

namespace logsplice::sys {

// Thin wrappers over splice(2)/tee(2). They never hide a short transfer: each returns the
// bytes actually moved, which may be fewer than asked. EAGAIN with nothing moved is
// ErrorCode::kWouldBlock; EINTR with nothing moved is retried. Any other failure is an Error
// from fromErrno (EINVAL/EOPNOTSUPP/ENOSYS/EXDEV map to kUnsupported: use the copy path).

// Regular file at *offset -> pipe. Advances *offset by the bytes moved; 0 means EOF.
Result<size_t> spliceFileToPipe(SysCalls& sys, int file_fd, uint64_t* offset, int pipe_wr,
                                size_t len);

// Pipe -> any fd (socket, file, pipe). out_offset may be null (socket, pipe); with it the
// output is a regular file written at *out_offset, which advances. `more` sets SPLICE_F_MORE.
Result<size_t> splicePipeToFd(SysCalls& sys, int pipe_rd, int out_fd, uint64_t* out_offset,
                              size_t len, bool more);

// Duplicates up to len bytes from the head of src into dst without consuming src. A second call
// starts again at the head of src: a partial tee cannot be resumed (docs/design.md K5).
Result<size_t> teePipe(SysCalls& sys, int src_rd, int dst_wr, size_t len);

}  // namespace logsplice::sys
