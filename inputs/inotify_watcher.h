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
  static sys::Result<std::unique_ptr<InotifyWatcher>> create(uv_loop_t* loop,
                                                             WatchHandler& handler);
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
  void forget(int wd);

  static constexpr uint32_t kMask = IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
                                    IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF |
                                    IN_MOVE_SELF | IN_ONLYDIR;

  uv_loop_t* loop_;
  WatchHandler& handler_;
  sys::UniqueFd fd_;               // closed after poll_ (member order)
  sys::UvHandle<uv_poll_t> poll_;  // readable inotify fd
  std::map<int, std::string> dir_by_wd_;
  std::map<std::string, int> wd_by_dir_;
  bool started_ = false;
};

}  // namespace logsplice::inputs
