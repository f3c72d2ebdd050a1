#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

#include "sys/error.h"

namespace logsplice::sys {

// Owns one file descriptor. Move-only; closes best-effort in its destructor. Callers that need
// the result of close() (an archive after fsync) call close() explicitly.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }
  Error close() {
    int old = release();
    if (old >= 0 && ::close(old) != 0) return Error::fromErrno(errno, "close");
    return Error::ok();
  }

 private:
  int fd_ = -1;
};

}  // namespace logsplice::sys
