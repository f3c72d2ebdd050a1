#pragma once

// A SysCalls whose calls can be replaced one by one (fault injection): each hook returns
// std::nullopt to let the real call run. Counts calls. Not for use from two threads at once
// unless the hooks are thread-safe themselves.

#include <atomic>
#include <functional>
#include <optional>

#include "sys/sys_calls.h"

namespace logsplice::testing {

class FakeSysCalls : public sys::SysCalls {
 public:
  using SpliceHook = std::function<std::optional<sys::SysResult>(
      int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len, unsigned flags)>;
  using TeeHook = std::function<std::optional<sys::SysResult>(int fd_in, int fd_out, size_t len)>;
  using PwriteHook =
      std::function<std::optional<sys::SysResult>(int fd, const void* buf, size_t len, off_t off)>;

  SpliceHook on_splice;
  TeeHook on_tee;
  PwriteHook on_pwrite;
  std::atomic<int> splice_calls{0};
  std::atomic<int> tee_calls{0};
  std::atomic<int> pwrite_calls{0};

  sys::SysResult splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                        unsigned flags) override {
    ++splice_calls;
    if (on_splice) {
      if (auto r = on_splice(fd_in, off_in, fd_out, off_out, len, flags)) return *r;
    }
    return SysCalls::splice(fd_in, off_in, fd_out, off_out, len, flags);
  }
  sys::SysResult tee(int fd_in, int fd_out, size_t len, unsigned flags) override {
    ++tee_calls;
    if (on_tee) {
      if (auto r = on_tee(fd_in, fd_out, len)) return *r;
    }
    return SysCalls::tee(fd_in, fd_out, len, flags);
  }
  sys::SysResult pwrite(int fd, const void* buf, size_t len, off_t offset) override {
    ++pwrite_calls;
    if (on_pwrite) {
      if (auto r = on_pwrite(fd, buf, len, offset)) return *r;
    }
    return SysCalls::pwrite(fd, buf, len, offset);
  }

  static sys::SysResult fail(int err) { return sys::SysResult{-1, err}; }
};

}  // namespace logsplice::testing
