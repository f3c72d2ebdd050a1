#pragma once

#include <cstdint>
#include <string>

#include "outputs/sink.h"
#include "sys/error.h"
#include "sys/sys_calls.h"

namespace logsplice::outputs {

// A sink that ships the file's bytes unchanged: its pipe is spliced into a descriptor (a socket,
// an archive file), so the bytes never pass through the agent's memory (docs/design.md section
// 2). Subclasses own the descriptor and decide when bytes count as delivered (acknowledged by
// the peer's TCP stack, or written to the archive).
class StreamSink : public Sink {
 public:
  StreamSink(std::string name, SinkListener& listener, sys::SysCalls& sys)
      : Sink(std::move(name), listener), sys_(sys) {}

 protected:
  // Splices up to `max` registered bytes from the pipe into `fd` (at *offset for a regular
  // file, which advances; null for a socket or pipe) with one call, and counts them as written
  // and sent. Returns the bytes moved (0: nothing registered, or the pipe is empty) or the error
  // of splicePipeToFd (kWouldBlock when the fd is full).
  sys::Result<size_t> spliceOut(int fd, uint64_t* offset, uint64_t max);
  // Splices everything registered into `fd` until it would block. Returns kWouldBlock's
  // absence as ok; any other failure is returned with the bytes moved before it counted.
  // `moved` says whether anything went.
  sys::Error spliceAll(int fd, bool* moved);
  // The segment holding the first byte not yet written, and how many of its stream bytes are
  // left; null when everything registered is written.
  const Segment* unwrittenSegment(uint64_t* left) const;

  sys::SysCalls& sys_;
};

}  // namespace logsplice::outputs
