#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <string>

#include "sys/uv_handle.h"
#include "inputs/watcher.h"

namespace logsplice::inputs {

// Watches directories by stat polling on a uv_timer: every interval it lists each directory,
// stats every entry (following symlinks) and reports the names whose (inode, size, mtime,
// ctime, link count) changed, appeared or vanished. The fallback when inotify cannot serve:
// `poll: true`, no inotify instance (EMFILE), no watch left (ENOSPC), or a filesystem whose
// remote changes send no events (NFS, FUSE, SMB). Costs one stat per entry per tick. Loop thread
// only; the loop and the handler must outlive it.
class PollWatcher : public Watcher {
 public:
  PollWatcher(uv_loop_t* loop, WatchHandler& handler, std::chrono::milliseconds interval);
  ~PollWatcher() override;

  sys::Error watchDir(const std::string& dir) override;
  void unwatchDir(const std::string& dir) override { dirs_.erase(dir); }
  bool watches(const std::string& dir) const override { return dirs_.count(dir) != 0; }
  size_t watchedCount() const override { return dirs_.size(); }
  void start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;

  // One polling pass now (also what the timer does).
  void pollOnce();

 private:
  struct EntryStat {
    uint64_t ino = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    uint64_t nlink = 0;
    bool is_dir = false;
    bool operator==(const EntryStat&) const = default;
  };
  using Snapshot = std::map<std::string, EntryStat>;
  static bool snapshot(const std::string& dir, Snapshot& out);
  static void onTimer(uv_timer_t* timer);

  uv_loop_t* loop_;
  WatchHandler& handler_;
  uint64_t interval_ms_;
  sys::UvHandle<uv_timer_t> timer_;
  std::map<std::string, Snapshot> dirs_;
  bool started_ = false;
};

}  // namespace logsplice::inputs
