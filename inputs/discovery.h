#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "inputs/inotify_watcher.h"
#include "inputs/path_glob.h"
#include "inputs/poll_watcher.h"
#include "inputs/watcher.h"

namespace logsplice::inputs {

// What Discovery reports to the tailer. Loop thread only.
class DiscoveryHandler {
 public:
  virtual ~DiscoveryHandler() = default;
  // Entries of watched directories changed (files only; directory changes become rescans).
  virtual void entriesChanged(const std::vector<WatchHandler::Event>& events) = 0;
  // The set of directories changed, or events were lost: expand the globs again.
  // `overflow`: the kernel dropped events (IN_Q_OVERFLOW).
  virtual void rescanNeeded(bool overflow) = 0;
};

// The globs of one input and the directories they need watched. Expands `paths` (minus
// `exclude`), watches every directory a match can appear in (and the deepest existing ancestor
// of a root that does not exist yet), and turns watcher events into entry changes or rescan
// requests. Chooses the backend per directory when it is first watched: inotify, or stat
// polling when `poll: true`, when inotify has no instance (EMFILE) or no watch left (ENOSPC),
// or on a network/FUSE filesystem (statfs f_type). Loop thread only; the loop and the handler
// must outlive it.
class Discovery : public WatchHandler {
 public:
  Discovery(uv_loop_t* loop, const config::InputConfig& cfg, DiscoveryHandler& handler);
  ~Discovery() override;

  // Compiles the patterns; an error names the bad one.
  sys::Error init();
  // Expands every glob: watches directories (new ones too) and calls on_file for each
  // candidate file. Missing directories are not errors. Returns 0, or EMFILE/ENFILE when a
  // directory could not be listed or polled for want of descriptors: the scan is incomplete
  // and must be retried once descriptors are free.
  // on_dir_error: a directory that exists but cannot be listed (EACCES...), with the errno.
  int scan(const std::function<void(const std::string& path)>& on_file,
           const PathGlob::DirErrorFn& on_dir_error = nullptr);
  // The same, handing on the stat(2) the walk took of each file (null if it failed).
  int scanStat(const PathGlob::FileStatFn& on_file,
               const PathGlob::DirErrorFn& on_dir_error = nullptr);
  // Whether `path` matches a glob and no exclude pattern.
  bool isCandidate(const std::string& path) const;
  bool excluded(const std::string& path) const;
  // Also watch a directory outside the globs (the target directory of a symlinked file).
  void watchExtra(const std::string& dir);

  bool polling() const { return poll_ && poll_->watchedCount() > 0; }
  bool inotifyAvailable() const { return inotify_ != nullptr; }
  void start();
  void stop();
  void close(std::function<void()> on_closed);

  // WatchHandler (from either backend).
  void changed(const std::vector<Event>& events) override;
  void overflowed() override { handler_.rescanNeeded(true); }

  // Test hooks: the live backends (null when unused).
  InotifyWatcher* inotifyWatcher() { return inotify_.get(); }
  PollWatcher* pollWatcher() { return poll_.get(); }

 private:
  void watch(const std::string& dir);
  void watchAncestor(const std::string& missing_root);
  PollWatcher& pollBackend();
  static bool isEventlessFs(const std::string& dir, long* f_type);

  uv_loop_t* loop_;
  const config::InputConfig& cfg_;
  DiscoveryHandler& handler_;
  std::vector<PathGlob> globs_;
  std::unique_ptr<InotifyWatcher> inotify_;
  std::unique_ptr<PollWatcher> poll_;
  std::set<std::string> ancestors_;  // watched only to see a missing root appear
  bool started_ = false;
  bool warned_no_space_ = false;
  int fd_error_ = 0;  // EMFILE/ENFILE met by the scan in progress
};

}  // namespace logsplice::inputs
