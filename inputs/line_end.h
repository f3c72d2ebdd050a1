#pragma once

#include <cstdint>

#include "sys/error.h"
#include "sys/sys_calls.h"

namespace logsplice::inputs {

// Finds the end (offset just past the '\n') of the last complete line in [from, to) of fd,
// reading backwards from `to` a window at a time (pread + memrchr) and never scanning forwards:
// the cost is one syscall for ordinary appends. Returns `from` when the range holds no newline.
// After each window without a newline the window doubles, up to 64 KiB (or window_bytes if
// larger). A short read (the file shrank meanwhile) searches what was read and goes on.
// Bytes read here are not shipped and are not counted as copies.
sys::Result<uint64_t> findLastLineEnd(sys::SysCalls& sys, int fd, uint64_t from, uint64_t to,
                                      uint32_t window_bytes = 4096);

}  // namespace logsplice::inputs
