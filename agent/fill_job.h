#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sys/error.h"
#include "sys/pipe.h"
#include "sys/sys_calls.h"
#include "sys/unique_fd.h"

namespace logsplice::agent {

// One sink's share of a fill: the router fills in the inputs, the I/O thread the results.
struct FillTarget {
  uint32_t sink = 0;  // the sink's id (RouteTable)
  int pipe_wr = -1;
  uint64_t sink_epoch = 0;
  bool newline_first = false;  // a '\n' is owed from a break this sink reached earlier
  // Results.
  uint64_t moved = 0;  // file bytes put into the sink's pipe
  bool newline_first_written = false;
  bool newline_after = false;  // wrote the '\n' of the break at limit_end
  // Bytes this target's pipe got through our own memory (pread + write of copy mode, the
  // added '\n's); each is in sys::CopyCounter too. The router adds them to the sink's
  // SinkStats::bytes_copied. A copy fill of several targets counts its bytes for every target
  // that got them: each destination's bytes went through our memory once (today one write per
  // target; a copy written once and tee'd on would still count for each), so the sinks' counts
  // add up to the global counter.
  uint64_t copied = 0;
};

// Moves file bytes [offset, end) into one or more sink pipes, where end is at most
// offset + max_len and at most limit_end, and is pulled back to the last line end when the
// limit cuts a line (pread of 1 KiB backwards, more only for longer lines; no forward scan).
// The bytes go in pieces of `chunk`; one job fills the pipes as far as they have room, so a
// round trip between the loop and the I/O thread moves a pipe's worth, not one piece. With
// several targets and lockstep on, each piece is spliced once into the I/O thread's source
// pipe, tee'd into every target but the last and spliced into the last. A target whose tee or
// splice comes up short keeps what it got and drops out of the rest of the job (tee cannot be
// resumed: it restarts at the head of its source); the router then sees it at another offset.
struct FillJob {
  uint64_t file_id = 0;
  uint64_t generation = 0;
  std::shared_ptr<const sys::UniqueFd> fd;
  uint64_t offset = 0;
  uint64_t limit_end = 0;       // the file's complete end, or the next break
  bool limit_is_break = false;  // a '\n' must follow the byte before limit_end
  uint64_t max_len = 0;         // at most this many bytes in all (the room in the pipes)
  uint64_t chunk = 64 * 1024;   // bytes per splice call (cheaper than big ones for fan-out)
  bool copy_mode = false;       // read/write instead of splice (counted)
  bool lockstep = true;
  std::vector<FillTarget> targets;
  // Results.
  uint64_t planned_end = 0;
  bool planned_at_boundary = false;  // planned_end is a line end (or the break)
  bool unsupported = false;          // the file refused splice: use copy mode from now on
  sys::Error error;
};

// Runs a fill job. `src` is the I/O thread's own empty source pipe (lockstep), `dev_null` a
// write fd on /dev/null to discard what the last target could not take. Blocking on disk
// reads is fine here: this runs on the I/O thread, never on the loop.
void executeFill(sys::SysCalls& sys, FillJob& job, sys::Pipe& src, int dev_null);

}  // namespace logsplice::agent
