#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sys/error.h"
#include "sys/metrics.h"
#include "config/config.h"
#include "inputs/dir_errors.h"
#include "inputs/fd_budget.h"
#include "inputs/file_identity.h"
#include "inputs/file_observer.h"

namespace logsplice::inputs {

// A file the checkpoints know about, to be found again by identity at start-up (it may have
// been rotated to another name while the agent was down).
struct KnownFile {
  std::string path;
  FileIdentity identity;
};

// Counters of one input, read by the metrics endpoint. Loop thread only.
struct InputStats {
  uint64_t files_followed = 0;  // gauge: followers open or suspended now
  uint64_t files_discovered = 0;
  uint64_t rotations = 0;
  uint64_t truncations = 0;
  uint64_t deletions = 0;
  uint64_t long_line_splits = 0;
  uint64_t partial_line_flushes = 0;
  uint64_t inotify_overflows = 0;
  uint64_t rescans = 0;
  uint64_t open_errors = 0;
  uint64_t retention_releases = 0;
  bool polling = false;  // gauge: stat polling serves (some of) this input
  // The open-file budget (agent.max_open_files, FdBudget).
  uint64_t files_open = 0;            // gauge: followers holding an fd now
  uint64_t files_suspended = 0;       // gauge: followed, fd closed until the file changes
  uint64_t files_waiting_for_fd = 0;  // gauge: files (new or suspended) queued for an fd
  uint64_t suspensions = 0;           // idle drained files closed to free an fd
  uint64_t reopens = 0;               // suspended files reopened by path
  uint64_t fd_exhaustions = 0;        // EMFILE/ENFILE met (then treated as a spent budget)
  uint64_t skipped_symlinks = 0;      // dangling symlinks and symlink loops matching the globs
  // Directories of the globs that exist but cannot be listed (EACCES...): see unreadableDirs().
  uint64_t unreadable_dirs = 0;   // gauge: such directories now
  uint64_t dir_errors_total = 0;  // counter: directories found unlistable (once per episode)
};

// Everything one `inputs:` entry does: expands its globs, watches the directories (inotify via
// uv_poll, stat polling as fallback), opens a Follower per matching file and reports to the
// FileObserver. Loop thread only; the loop and the observer must outlive it. Verbs as libuv:
// start, stop, close.
//
// File descriptors: each open follower holds one unit of `budget` (shared by every input of the
// process). Beyond it, the least recently active live files that the observer reports drained
// are suspended (fd closed, still followed: Follower::fd() is -1) and reopened by path and
// identity when their directory reports a change (or a rescan sees one); if one was rotated
// meanwhile it is found again by inode in its directory. Files that cannot get an fd (budget
// spent with nothing idle, or EMFILE/ENFILE) wait in a queue and are opened as soon as one
// frees up: never dropped.
class InputTailer {
 public:
  // Uses FdBudget::process(): unlimited unless the agent configured it.
  InputTailer(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer);
  // `budget` must outlive the tailer.
  InputTailer(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer,
              FdBudget& budget);
  ~InputTailer();
  InputTailer(const InputTailer&) = delete;
  InputTailer& operator=(const InputTailer&) = delete;

  // at_startup: start_at applies to the files found now (otherwise every file starts at 0).
  // known: files from the checkpoints of this input, reopened by identity first.
  sys::Error start(bool at_startup, const std::vector<KnownFile>& known);
  // Stops watching and reading; followers stay open until close().
  void stop();
  // Closes every handle and follower (fileClosing for each); on_closed runs once all libuv
  // handles are closed. The tailer may be destroyed after that.
  void close(std::function<void()> on_closed);
  // Re-checks f now, so a rotated/deleted file every sink has caught up on is closed at once
  // instead of at the next timer tick. Safe to call from inside an observer callback: the
  // check then runs when the tailer's own callback unwinds (a follower is never destroyed
  // under a caller's feet). fileClosing is the last call for f; destroy nothing before it.
  // The agent uses Follower::requestRecheck(), which reaches the tailer directly and is always
  // deferred; this synchronous form is what the tailer's tests drive.
  void poke(Follower& f);

  const config::InputConfig& config() const;
  const InputStats& stats() const;
  // The directories of the globs that cannot be listed now, with the reason (for `status`).
  std::vector<UnreadableDir> unreadableDirs() const;
  // This input's metrics (logsplice_input_*, label `input`), for the metrics endpoint.
  void collectMetrics(sys::MetricWriter& w) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace logsplice::inputs
