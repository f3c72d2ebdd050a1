#pragma once

// InputTailer's state. Private to inputs/. The class is defined over two files of one concept
// each: input_tailer.cc (lifecycle, the tick, deferred close checks and closing, the open-file
// budget's suspensions) and tailer_routing.cc (discovery events and scans routed to followers,
// opening followers, reopening suspended ones). The followers' own transitions live in
// follower.cc / follower_fs.cc, the queue of files waiting for an fd in fd_wait_queue.cc, the
// unlistable directories in dir_errors.cc.

#include <sys/stat.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "inputs/dir_errors.h"
#include "inputs/discovery.h"
#include "inputs/fd_budget.h"
#include "inputs/fd_wait_queue.h"
#include "inputs/follower_table.h"
#include "inputs/input_tailer.h"
#include "sys/uv_handle.h"

namespace logsplice::inputs {

// See input_tailer.h. Loop thread only. Observer callbacks may call poke() re-entrantly: work
// that could close a follower is deferred until the outermost entry point (event batch, timer,
// start, poke) unwinds, so no follower is destroyed while a frame below still uses it.
// Suspending a follower (another tailer's reclaim may do it at any time this tailer is not
// running) only closes its fd: it never destroys a follower nor calls the observer.
class InputTailer::Impl : public DiscoveryHandler, public FdBudget::Holder, public FollowerOwner {
 public:
  Impl(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer, FdBudget& budget);
  ~Impl() override;

  sys::Error start(bool at_startup, const std::vector<KnownFile>& known);
  void stop();
  void close(std::function<void()> on_closed);
  void poke(const Follower& f);

  // DiscoveryHandler
  void entriesChanged(const std::vector<WatchHandler::Event>& events) override;
  void rescanNeeded(bool overflow) override;

  // FdBudget::Holder
  void collectIdle(std::vector<Idle>& out) override;
  bool suspendIdle(uint64_t follower_id) override;

  // FollowerOwner
  void recheckSoon(Follower& f) override;
  void followerStateChanged(Follower& f, Follower::State from) override;

  const config::InputConfig& config() const { return cfg_; }
  const InputStats& stats() const { return stats_; }
  const DirErrors& dirErrors() const { return dir_errors_; }

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
  // What one batch of events said about one name.
  struct Touch {
    bool removed_only = false;  // only deletions / moves away
    bool content_only = false;  // only writes to a file (no create, move or delete)
  };

  uint64_t now() {
    uv_update_time(loop_);
    return uv_now(loop_);
  }
  uint64_t tickMs() const;
  uint64_t rescanIntervalMs() const;
  void armRescan(uint64_t every);
  // After a rescan that took `took_ms`: spaces the periodic ones so they stay cheap.
  void paceRescans(uint64_t took_ms);
  static constexpr uint64_t kRescanCostShare = 400;
  static constexpr uint64_t kRescanCheapMs = 50;        // below: the configured pace
  static constexpr uint64_t kRescanMaxPaceMs = 300000;  // the safety net runs at least this often
  void syncGauges();

  // ---- Lifecycle, tick, closing (input_tailer.cc). ----
  void onTick();
  void runDeferred();
  void runRechecks();
  void checkClose(uint64_t id, uint64_t now);
  void closeFollower(uint64_t id, bool retention, uint64_t now);
  bool suspendable(const Follower& f) const;
  // One unit of the budget, reclaiming idle followers (of any input) if it is spent. Empty
  // when none is free, or when earlier files already wait (first come, first served).
  FdLease acquireFd();
  void noteFdShortage(int err, const std::string& what);
  void retryWaiting();

  // ---- Routing discovery to followers (tailer_routing.cc). ----
  void rescan(uint64_t now);
  void handlePath(const std::string& path, Touch touch, uint64_t now);
  // `known`: the path's stat(2) when the caller (a rescan) has just taken it.
  void consider(const std::string& path, bool from_scan, uint64_t now,
                std::set<FollowerTable::InodeKey>* seen, const struct stat* known = nullptr);
  void considerRequest(OpenRequest req, uint64_t now, std::set<FollowerTable::InodeKey>* seen,
                       const struct stat* known = nullptr);
  Follower* openFollower(const OpenRequest& req, uint64_t now);
  void openKnown(const KnownFile& k, uint64_t now);
  // Whether the path of a live follower still names its file; reopens a suspended one whose
  // file changed, and marks rotated one whose name went.
  void checkLive(Follower& f, uint64_t now);
  void markRotated(Follower& f, uint64_t now);
  void refreshAndApply(Follower& f, uint64_t now) { apply(f, f.refresh(sys_, now)); }
  void apply(Follower& f, const Follower::Change& c);
  void refreshNonLive(uint64_t now);
  // Reopens a suspended follower (by path while live, by inode once rotated), or queues it.
  void reopen(Follower& f, uint64_t now);
  void noteOpenError(const std::string& path, int err);
  void noteSkippedLink(const std::string& path, int err);

  uv_loop_t* loop_;
  config::InputConfig cfg_;
  FileObserver& observer_;
  FdBudget& budget_;
  sys::SysCalls& sys_ = sys::SysCalls::real();
  InputStats stats_;
  uint64_t open_fds_ = 0;  // tally of this tailer's leases alive (kept by FdLease itself)
  FollowerTable table_;    // after open_fds_: the followers' leases go before the tally
  Discovery discovery_;
  FdWaitQueue waiting_;
  DirErrors dir_errors_;
  sys::UvHandle<uv_timer_t> tick_;               // rotated/deleted refresh, partial lines, closing
  sys::UvHandle<uv_timer_t> rescan_;             // safety-net rescan every rescan_interval
  sys::UvHandle<uv_timer_t> recheck_;            // zero-delay: Follower::requestRecheck()
  std::map<std::string, int> open_errors_;       // path -> errno already logged
  std::unordered_set<uint64_t> scan_unchanged_;  // live followers a rescan found unchanged
  bool in_rescan_ = false;
  uint64_t rescan_every_ms_ = 0;  // the periodic rescan's pace now
  std::set<uint64_t> partial_;    // followers that may hold an unterminated line (a superset)
  std::set<uint64_t> deferred_;   // follower ids to re-check for closing
  std::set<uint64_t> rechecks_;   // follower ids asked for by requestRecheck()
  bool noted_suspending_ = false;
  int depth_ = 0;
  bool started_ = false;
  bool closing_ = false;
  bool startup_scan_ = false;
};

}  // namespace logsplice::inputs
