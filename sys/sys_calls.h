#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace logsplice::sys {

// The result of one system call: the return value, and errno when it is negative.
struct SysResult {
  ssize_t value = 0;
  int err = 0;
  bool failed() const { return value < 0; }
};

// The seam between the data path and the kernel (after LevelDB's Env and Envoy's OsSysCalls):
// the calls that move log bytes go through here so tests can force EAGAIN, ENOSPC, EPIPE or
// EINVAL. Everything else calls the OS directly.
// (splice, tee, reads, writes and fdatasync of log bytes and of their destinations.) Implementations must be thread-safe: the I/O
// thread and the loop thread share the real one.
class SysCalls {
 public:
  virtual ~SysCalls() = default;
  virtual SysResult splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                           unsigned flags);
  virtual SysResult tee(int fd_in, int fd_out, size_t len, unsigned flags);
  virtual SysResult pread(int fd, void* buf, size_t len, off_t offset);
  virtual SysResult write(int fd, const void* buf, size_t len);
  virtual SysResult pwrite(int fd, const void* buf, size_t len, off_t offset);
  // preadv2 with flags (RWF_NOWAIT: the residency probe, which must fail with EAGAIN rather
  // than wait for the disk).
  virtual SysResult preadv2(int fd, void* buf, size_t len, off_t offset, int flags);
  virtual SysResult fdatasync(int fd);
  virtual SysResult writev(int fd, const struct iovec* iov, int iovcnt);

  // The process-wide real implementation.
  static SysCalls& real();
};

// Bytes the agent has moved through its own memory on the way to a sink (copy fallback, newlines
// added to split long or final lines). Zero on the normal path; exported as bytes_copied_total.
class CopyCounter {
 public:
  static void add(uint64_t n) { total_.fetch_add(n, std::memory_order_relaxed); }
  static uint64_t total() { return total_.load(std::memory_order_relaxed); }

 private:
  static inline std::atomic<uint64_t> total_{0};
};

}  // namespace logsplice::sys
