#pragma once

// InputTailer's state, shared by input_tailer.cc (discovery, rotation, closing) and
// input_tailer_fds.cc (the open-file budget: suspension, reopening, waiting for an fd).
// Private to inputs/.

#include <sys/stat.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "inputs/discovery.h"
#include "inputs/fd_budget.h"
#include "inputs/follower_table.h"
#include "inputs/input_tailer.h"
#include "sys/uv_handle.h"

namespace logsplice::inputs {

// See input_tailer.h. Loop thread only. Observer callbacks may call poke() re-entrantly: work
// that could close a follower is deferred until the outermost entry point (event batch, timer,
// start, poke) unwinds, so no follower is destroyed while a frame below still uses it.
// Suspending a follower (another tailer's reclaim may do it at any time this tailer is not
// running) only closes its fd: it never destroys a follower nor calls the observer.
class InputTailer::Impl : public DiscoveryHandler, public FdBudget::Holder {
 public:
  Impl(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer, FdBudget& budget);
  ~Impl() override;

  sys::Error start(bool at_startup, const std::vector<KnownFile>& known);
  void stop();
  void close(std::function<void()> on_closed);
  void poke(const Follower& f);

  void entriesChanged(const std::vector<WatchHandler::Event>& events) override;
  void rescanNeeded(bool overflow) override;

  // FdBudget::Holder
  void collectIdle(std::vector<Idle>& out) override;
  bool suspendIdle(uint64_t follower_id) override;

  const config::InputConfig& config() const { return cfg_; }
  const InputStats& stats() const { return stats_; }
  Discovery& discovery() { return discovery_; }

 private:
  // Marks an entry point; the outermost one runs the deferred close checks on the way out.
  class Entry {
   public:
    explicit Entry(Impl& impl) : impl_(impl) { ++impl_.depth_; }
    ~Entry() {
      if (impl_.depth_ == 1) {
        impl_.runDeferred();
        impl_.syncGauges();
      }
      --impl_.depth_;
    }

   private:
    Impl& impl_;
  };

  // A file to open, kept as such while it waits for an fd.
  struct OpenRequest {
    std::string path;
    Follower::State state = Follower::State::kLive;
    bool from_scan = false;  // a scan listed it: report open errors
    // start_at: end applies (found by the start-up scan): ship from the last line end at or
    // before startup_size, the size the scan saw, however long the file waited for an fd.
    bool at_startup = false;
    uint64_t startup_size = UINT64_MAX;
  };

  uint64_t now() {
    uv_update_time(loop_);
    return uv_now(loop_);
  }
  void rescan(uint64_t now);
  // What one batch of events said about one name.
  struct Touch {
    bool removed_only = false;  // only deletions / moves away
    bool content_only = false;  // only writes to a file (no create, move or delete)
  };
  void handlePath(const std::string& path, Touch touch, uint64_t now);
  void consider(const std::string& path, bool from_scan, uint64_t now,
                std::set<FollowerTable::InodeKey>* seen);
  void considerRequest(OpenRequest req, uint64_t now, std::set<FollowerTable::InodeKey>* seen);
  Follower* openFollower(const OpenRequest& req, uint64_t now);
  void openKnown(const KnownFile& k, uint64_t now);
  void checkLive(Follower& f, uint64_t now);
  void refreshAndApply(Follower& f, uint64_t now) { apply(f, f.refresh(sys_, now)); }
  void apply(Follower& f, const Follower::Change& c);
  void refreshNonLive(uint64_t now);
  void noteOpenError(const std::string& path, int err);
  void noteSkippedLink(const std::string& path, int err);
  void onTick();
  void checkClose(uint64_t id, uint64_t now);
  void closeFollower(uint64_t id, bool retention, uint64_t now);
  void runDeferred();
  uint64_t tickMs() const;

  // ---- The open-file budget (input_tailer_fds.cc). ----
  static bool isFdShortage(int err) { return err == EMFILE || err == ENFILE; }
  // One unit of the budget, reclaiming idle followers (of any input) if it is spent. Empty
  // when none is free, or when earlier files already wait (first come, first served).
  FdGrant acquireFd();
  // The grant now belongs to a follower's open fd.
  void holdFd(FdGrant& grant) {
    grant.commit();
    ++held_fds_;
  }
  // A follower's fd closed (suspended or closed for good).
  void releaseFd() {
    budget_.release();
    if (held_fds_ > 0) --held_fds_;
  }
  void waitForFd(const OpenRequest& req);
  void waitForFd(uint64_t follower_id);
  void waitForFd(const KnownFile& k);
  void noteFdShortage(int err, const std::string& what);
  // checkLive() of a suspended follower: reopens it when its file changed, or treats a new
  // file under its name as a rotation that happened while it was suspended.
  void checkSuspended(Follower& f, uint64_t now);
  // Reopens a suspended follower: by path while live, by inode in its directory once rotated.
  void reopen(Follower& f, uint64_t now);
  void reopenRotated(Follower& f, uint64_t now);
  // The path of a suspended live follower names another file now, or nothing.
  void rotatedWhileSuspended(Follower& f, uint64_t now);
  bool suspendable(const Follower& f) const;
  void noteWaiting(const std::string& what);
  void retryWaiting();
  void armRetry();
  bool waitingForFd() const {
    return !waiting_opens_.empty() || !waiting_resumes_.empty() || !waiting_known_.empty() ||
           rescan_wanted_;
  }
  void syncGauges();

  uv_loop_t* loop_;
  config::InputConfig cfg_;
  FileObserver& observer_;
  FdBudget& budget_;
  sys::SysCalls& sys_ = sys::SysCalls::real();
  InputStats stats_;
  FollowerTable table_;
  Discovery discovery_;
  sys::UvHandle<uv_timer_t> tick_;          // rotated/deleted refresh, partial lines, closing
  sys::UvHandle<uv_timer_t> rescan_;        // safety-net rescan every rescan_interval
  sys::UvHandle<uv_timer_t> fd_retry_;      // while files wait for an fd (backs off to 1 s)
  std::map<std::string, int> open_errors_;  // path -> errno already logged
  std::set<uint64_t> scan_unchanged_;       // live followers a rescan's stat found unchanged
  std::set<uint64_t> partial_;   // followers that may hold an unterminated line (a superset)
  std::set<uint64_t> deferred_;  // follower ids to re-check for closing
  // Waiting for an fd, in arrival order; each also in a set so it is queued once.
  std::deque<OpenRequest> waiting_opens_;
  std::set<std::string> waiting_paths_;
  std::deque<uint64_t> waiting_resumes_;  // suspended followers whose file changed
  std::set<uint64_t> waiting_resume_ids_;
  std::vector<KnownFile> waiting_known_;
  bool rescan_wanted_ = false;  // a scan could not list a directory (EMFILE/ENFILE)
  bool draining_queue_ = false;
  uint64_t retry_ms_ = 0;
  uint64_t held_fds_ = 0;         // units of budget_ held by this tailer's followers
  uint64_t suspended_count_ = 0;  // followers with their fd closed
  bool noted_suspending_ = false;
  bool warned_waiting_ = false;   // once per episode of files waiting for an fd
  bool warned_shortage_ = false;  // once per episode of EMFILE/ENFILE
  int depth_ = 0;
  bool started_ = false;
  bool closing_ = false;
  bool startup_scan_ = false;
};

}  // namespace logsplice::inputs
