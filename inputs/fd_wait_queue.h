#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "inputs/fd_budget.h"
#include "inputs/input_tailer.h"
#include "sys/uv_handle.h"

namespace logsplice::inputs {

// A file to open, kept as such while it waits for an fd.
struct OpenRequest {
  std::string path;
  bool rotated = false;    // follow it as rotated (drain it, then close)
  bool from_scan = false;  // a scan listed it: report open errors
  // start_at: end applies (found by the start-up scan): ship from the last line end at or
  // before startup_size, the size the scan saw, however long the file waited for an fd.
  bool at_startup = false;
  uint64_t startup_size = UINT64_MAX;
};

// The files of one tailer that wait for a descriptor (budget spent with nothing idle, or
// EMFILE/ENFILE), in arrival order and each queued once: new files, suspended followers whose
// file changed, checkpointed files to find by inode, and a scan that could not list a
// directory. A retry timer (backing off from 20 ms to 1 s while nothing frees up) hands them
// back to the tailer. First come, first served: while files wait, newcomers queue behind them.
// Loop thread only.
class FdWaitQueue {
 public:
  // What a retry hands back, in this order; each entry may be queued again.
  struct Handlers {
    std::function<void()> rescan;
    std::function<void(uint64_t follower_id)> resume;
    std::function<void(const KnownFile&)> known;
    std::function<void(OpenRequest)> open;
  };

  FdWaitQueue(uv_loop_t* loop, const std::string& input_name, FdBudget& budget);
  // The retry timer; `on_retry` runs when it fires.
  [[nodiscard]] int init(std::function<void()> on_retry);
  void stop();
  void clear();
  void close(std::function<void()> on_closed);

  // Whether a new open must queue behind earlier files (false while a retry drains the queue).
  bool mustQueue() const { return size() > 0 && !draining_; }
  void push(const OpenRequest& req);
  void pushResume(uint64_t follower_id, const std::string& what);
  void push(const KnownFile& k);
  // A scan could not list a directory for want of descriptors: rescan at the next retry.
  void wantRescan();
  bool waitingResume(uint64_t follower_id) const { return resume_ids_.count(follower_id) != 0; }
  // Files waiting (the files_waiting_for_fd gauge).
  size_t size() const { return opens_.size() + resumes_.size() + known_.size(); }
  bool empty() const { return size() == 0 && !rescan_wanted_; }

  // EMFILE/ENFILE met: lowers the budget, warns once per episode. The caller counts it.
  void noteShortage(int err, const std::string& what);
  // Walks each queue at most once while the budget has units (an entry that has to wait again
  // goes to the back); re-arms the timer while anything still waits.
  void retry(const Handlers& h);

 private:
  void noteWaiting(const std::string& what);
  void arm();

  uv_loop_t* loop_;
  std::string input_name_;
  FdBudget& budget_;
  sys::UvHandle<uv_timer_t> timer_;
  std::function<void()> on_retry_;
  std::deque<OpenRequest> opens_;
  std::set<std::string> open_paths_;
  std::deque<uint64_t> resumes_;
  std::set<uint64_t> resume_ids_;
  std::vector<KnownFile> known_;
  bool rescan_wanted_ = false;
  bool draining_ = false;
  bool closing_ = false;
  uint64_t retry_ms_ = 0;
  bool warned_waiting_ = false;   // once per episode of files waiting for an fd
  bool warned_shortage_ = false;  // once per episode of EMFILE/ENFILE
};

}  // namespace logsplice::inputs
