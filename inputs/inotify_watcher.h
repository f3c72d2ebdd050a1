#pragma once

#include <sys/inotify.h>
#include <uv.h>

#include <map>
#include <memory>
#include <string>

#include "sys/unique_fd.h"
#include "sys/uv_handle.h"
#include "inputs/watcher.h"

namespace logsplice::inputs {

// Watches directories through one raw inotify fd read from a uv_poll_t (libuv's uv_fs_event
// drops IN_Q_OVERFLOW and rename cookies: docs/design.md K7). Only directories are watched: one
// directory watch covers every file in it, survives rotation, and lets the kernel coalesce
// identical consecutive IN_MODIFY events (a per-file watch would interleave and defeat that).
// Owns the inotify fd; the poll handle is declared after it so that it is closed (stopped)
// first. Loop thread only; the loop and the handler must outlive it.
class InotifyWatcher : public Watcher {
 public:
  // Fails when inotify_init1 fails (EMFILE: fs.inotify.max_user_instances reached).
  // `batch_delay_ms` > 0: once the fd turns readable, wait before reading it, so the events
  // of that window are read and handled as one batch (the handler dedups names): one wakeup
  // per window, one refresh per file that changed in it. While changes are spread over several
  // files (the last batch named more than one) the wait is `batch_delay_ms`: appends
  // interleaved over many files never merge in the kernel's queue and cost a refresh each.
  // Appends to one file do merge there (identical consecutive IN_MODIFY), so they wait at
  // most kSingleFileDelayMs: enough to turn a wakeup per write into one per millisecond (the
  // context switches were 40% of the agent's CPU at 50,000 lines/s), little latency.
  static sys::Result<std::unique_ptr<InotifyWatcher>> create(uv_loop_t* loop,
                                                             WatchHandler& handler,
                                                             uint64_t batch_delay_ms = 0);
  ~InotifyWatcher() override;

  sys::Error watchDir(const std::string& dir) override;
  void unwatchDir(const std::string& dir) override;
  bool watches(const std::string& dir) const override { return wd_by_dir_.count(dir) != 0; }
  size_t watchedCount() const override { return wd_by_dir_.size(); }
  void start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;

  // Reads and dispatches whatever is queued now (also what the poll callback does).
  void drain();

 private:
  InotifyWatcher(uv_loop_t* loop, WatchHandler& handler, sys::UniqueFd fd);
  static void onPoll(uv_poll_t* handle, int status, int events);
  static void onDelay(uv_timer_t* handle);
  void forget(int wd);

  static constexpr uint32_t kMask = IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
                                    IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF |
                                    IN_MOVE_SELF | IN_ONLYDIR;

  uv_loop_t* loop_;
  WatchHandler& handler_;
  sys::UniqueFd fd_;               // closed after poll_ (member order)
  sys::UvHandle<uv_poll_t> poll_;  // readable inotify fd
  sys::UvHandle<uv_timer_t> delay_;  // batch_delay: the fd is read when it fires
  uint64_t batch_delay_ms_ = 0;
  bool spread_ = false;  // the last batch named more than one file: the full delay
  static constexpr uint64_t kSingleFileDelayMs = 1;
  std::map<int, std::string> dir_by_wd_;
  std::map<std::string, int> wd_by_dir_;
  bool started_ = false;
};

}  // namespace logsplice::inputs
