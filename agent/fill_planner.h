#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "agent/fill_job.h"
#include "agent/route_table.h"
#include "config/config.h"
#include "sys/clock.h"
#include "sys/sys_calls.h"

namespace logsplice::agent {

// Decides what to fill next, never moves bytes itself: for each idle sink with room, which file
// (the file it stopped mid-line in, then rotated and deleted files, then live files round
// robin); which sinks of a file go together (lockstep: the same offset); how far a fill may go;
// and whether its pages are cached, so that it may run on the loop (docs/design.md 1.3, K4).
// Loop thread only.
class FillPlanner {
 public:
  FillPlanner(RouteTable& table, const config::AgentConfig& cfg, sys::SysCalls& sys,
              sys::Clock& clock)
      : table_(table), cfg_(cfg), sys_(sys), clock_(clock) {}

  // One fill to issue: a file and the sinks (ids) that get the same bytes from it.
  struct Fill {
    uint64_t file_id = 0;
    std::vector<uint32_t> sinks;
  };
  // The fills to issue now, for every sink that is idle, can take a chunk and has a file with
  // bytes for it. Sinks of one file at one offset form one group (unless lockstep is off).
  std::vector<Fill> plan();
  // The job for one planned fill; marks its sinks as filling.
  std::unique_ptr<FillJob> buildJob(FileRoute& fs, uint64_t file_id,
                                    const std::vector<uint32_t>& sinks);
  // Whether the job's pages are in the page cache (the fill then runs on the loop).
  bool cached(const FillJob& job, const inputs::Follower& f) const;

  // The file this sink should be fed from next (0: none).
  uint64_t pickFile(SinkSlot& slot);
  // The room a sink's pipe needs before it is worth a fill.
  uint64_t wantedRoom(const outputs::Sink& sink) const;
  // Updates which sinks have bytes waiting in this file.
  void refreshPending(uint64_t file_id, FileRoute& fs);
  static bool wantsBytes(const FileRoute& fs, const Cursor& c);

 private:
  // Whether the page holding `offset` is in the page cache now.
  bool residentNow(int fd, uint64_t offset) const;

  RouteTable& table_;
  const config::AgentConfig& cfg_;
  sys::SysCalls& sys_;
  sys::Clock& clock_;
};

}  // namespace logsplice::agent
