#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/checkpoint_store.h"
#include "agent/route_table.h"
#include "sys/clock.h"
#include "sys/sys_calls.h"

namespace logsplice::agent {

// What each sink has delivered of each file, and what follows from it: where a sink starts in a
// file (its checkpoint offset, at a line start), where it resends from after a broken
// connection, whether a file is drained, what retention made a sink miss, and the checkpoint
// entries (dirty files only, rewritten hourly otherwise so their age tells live files from gone
// ones). The offsets themselves live in the route table's cursors. Loop thread only.
class DeliveryBook {
 public:
  DeliveryBook(RouteTable& table, CheckpointStore& store, sys::SysCalls& sys, sys::Clock& clock)
      : table_(table), store_(store), sys_(sys), clock_(clock) {}

  // Where sink `name` starts in a file that starts being followed. `resume`: the store's entry
  // `saved` is this very file (same identity and fingerprint).
  uint64_t openingOffset(const FileRoute& fs, const CheckpointEntry* saved, bool resume,
                         const std::string& name, uint64_t default_start) const;
  // Where a sink added by a reload starts in a file already followed: its checkpoint offset if
  // the store has one (a sink re-added or changed), else the file's complete end.
  uint64_t liveAddOffset(const FileRoute& fs, const std::string& name) const;
  // The start of the line holding `offset` (a forced break counts as a line start).
  uint64_t lineStartAtOrBefore(const FileRoute& fs, uint64_t offset) const;

  // The sink delivered the file up to offset_end. False when that changed nothing.
  bool delivered(FileRoute& fs, uint32_t sink_id, uint64_t generation, uint64_t offset_end);
  // The sink lost its connection: its cursor goes back to the line start of `offset`. False
  // when the rewind does not apply (another generation, a sink not routed to the file).
  bool rewind(FileRoute& fs, uint32_t sink_id, uint64_t generation, uint64_t offset,
              bool newline_owed) const;
  // The sink's destination holds the file up to `offset`: its cursor moves forward to the line
  // start at or before it (never backward, never past the file). False when nothing changed.
  bool skipTo(FileRoute& fs, uint32_t sink_id, uint64_t generation, uint64_t offset) const;
  // Every sink has been given and has delivered everything complete, and no fill is in flight.
  bool drained(const FileRoute& fs, const inputs::Follower& f) const;
  // Forgets breaks below every delivered offset (a rewind never goes below what was delivered).
  void pruneBreaks(FileRoute& fs) const;

  // The file is being released. `keep`: the input comes back (reload) or the agent stops, so
  // its entry is kept (written if dirty) and nothing counts as missed. Otherwise every sink
  // that had not delivered up to the end counts the rest as missed, and the entry goes.
  void release(FileRoute& fs, const inputs::Follower& f, bool keep);
  // Delivered offsets of `fs` changed (or must be written anyway): the next checkpoint puts it.
  void markDirty(FileRoute& fs);
  // Writes the delivered offsets of every changed file into the store (not flushed), and
  // expires entries of files not followed for a day. Costs what changed: only the files marked
  // dirty are looked at, plus one walk over every file a minute for the hourly refresh.
  void checkpoint();
  // What the store should hold for one file now.
  CheckpointEntry entryFor(const FileRoute& fs, const inputs::Follower& f, int64_t now) const;

 private:
  RouteTable& table_;
  CheckpointStore& store_;
  sys::SysCalls& sys_;
  sys::Clock& clock_;
  std::vector<uint64_t> dirty_files_;  // ids of files marked dirty since the last checkpoint
  std::optional<int64_t> last_walk_unix_;  // when every file was last looked at
};

}  // namespace logsplice::agent
