#pragma once

#include <cstddef>

#include "sys/error.h"
#include "sys/unique_fd.h"

namespace logsplice::sys {

// A non-blocking, close-on-exec pipe and its real capacity (F_GETPIPE_SZ read back: the kernel
// rounds requests up to a power of two of pages, and past pipe-user-pages-soft it silently
// hands out less). Capacity is counted in slots of one buffer each, so a pipe can be "full"
// well below capacity bytes when it was filled by many small splices (docs/design.md K3).
class Pipe {
 public:
  // Creates a pipe and asks for want_bytes of capacity; failing to grow is not an error (the
  // pipe keeps its default size), failing to create one is.
  static Result<Pipe> create(size_t want_bytes);

  Pipe() = default;
  Pipe(Pipe&&) = default;
  Pipe& operator=(Pipe&&) = default;

  int readFd() const { return read_.get(); }
  int writeFd() const { return write_.get(); }
  size_t capacity() const { return capacity_; }
  // Bytes queued in the pipe now (FIONREAD), or 0 on error.
  size_t queued() const;
  void reset() {
    read_.reset();
    write_.reset();
    capacity_ = 0;
  }

 private:
  UniqueFd read_;
  UniqueFd write_;
  size_t capacity_ = 0;
};

}  // namespace logsplice::sys
