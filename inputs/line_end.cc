#include "inputs/line_end.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace logsplice::inputs {
namespace {

// Windows double after each miss, up to this size, so a long run of bytes without a newline
// (a huge line, a binary file) costs O(log) small reads plus large ones, not thousands of 4 KiB
// ones.
constexpr uint64_t kMaxWindowBytes = 64 * 1024;
constexpr size_t kStackWindowBytes = 4096;

}  // namespace

sys::Result<uint64_t> findLastLineEnd(sys::SysCalls& sys, int fd, uint64_t from, uint64_t to,
                                      uint32_t window_bytes) {
  if (to <= from) return from;
  uint64_t window = std::max<uint64_t>(window_bytes, 1);
  // The common case (an append found within the first 4 KiB window) reads into the stack: a
  // heap buffer per refresh costs a malloc that also consolidates glibc's fast bins (a request
  // this size is a large-bin one), measured at 5% of the agent with 100 files growing.
  char small[kStackWindowBytes];
  std::vector<char> heap;
  uint64_t end = to;
  while (end > from) {
    uint64_t start = end - std::min(window, end - from);
    size_t len = static_cast<size_t>(end - start);
    char* buf = small;
    if (len > sizeof(small)) {
      if (heap.size() < len) heap.resize(len);
      buf = heap.data();
    }
    sys::SysResult r = sys.pread(fd, buf, len, static_cast<off_t>(start));
    if (r.failed()) {
      if (r.err == EINTR) continue;
      return sys::Error::fromErrno(r.err, "pread (line end)");
    }
    // A short read means the file shrank under us (truncation race): search what was read; the
    // next refresh sees the new size and handles the truncation.
    size_t got = static_cast<size_t>(r.value);
    if (got > 0) {
      const void* nl = ::memrchr(buf, '\n', got);
      if (nl != nullptr) {
        return start + static_cast<uint64_t>(static_cast<const char*>(nl) - buf) + 1;
      }
    }
    end = start;
    window = std::min(window * 2, std::max<uint64_t>(kMaxWindowBytes, window_bytes));
  }
  return from;
}

}  // namespace logsplice::inputs
