#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/sys/error.h"
#include "config/config.h"
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
};

// Everything one `inputs:` entry does: expands its globs, watches the directories (inotify via
// uv_poll, stat polling as fallback), opens a Follower per matching file and reports to the
// FileObserver. Loop thread only; the loop and the observer must outlive it. Verbs as libuv:
// start, stop, close.
class InputTailer {
 public:
  InputTailer(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer);
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
  // The router calls this when a sink caught up on f, so a rotated/deleted file can be closed
  // at once instead of at the next timer tick. Safe to call from inside an observer callback:
  // the check then runs when the tailer's own callback unwinds (a follower is never destroyed
  // under a caller's feet). fileClosing is the last call for f; destroy nothing before it.
  void poke(Follower& f);

  const config::InputConfig& config() const;
  const InputStats& stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace logsplice::inputs
