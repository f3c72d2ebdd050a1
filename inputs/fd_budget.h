#pragma once

#include <cstdint>
#include <vector>

namespace logsplice::inputs {

// The process-wide budget of file descriptors that followers may hold (agent.max_open_files,
// capped below RLIMIT_NOFILE). Every InputTailer of the process draws from the same budget:
// a follower takes one unit while its fd is open and returns it when the follower closes or is
// suspended. When a tailer needs an fd and the budget is spent, reclaim() closes the least
// recently active idle followers of any tailer (live, caught up: the observer reports them
// drained); they are reopened by path when their file changes. What cannot be opened now waits
// in its tailer's queue: never dropped.
//
// Loop thread only (all tailers of a process share one loop). Holders detach before they are
// destroyed; the budget must outlive them.
class FdLease;

class FdBudget {
 public:
  static constexpr uint64_t kUnlimited = UINT64_MAX;

  // Something that holds fds of the budget and can give some back: an InputTailer.
  class Holder {
   public:
    struct Idle {
      uint64_t last_active_ms = 0;  // uv_now() of the loop when the file last changed
      Holder* holder = nullptr;
      uint64_t follower_id = 0;
    };
    virtual ~Holder() = default;
    // Appends the followers that could be suspended now (idle, drained, no partial line).
    virtual void collectIdle(std::vector<Idle>& out) = 0;
    // Closes that follower's fd (and releases its unit); false if it is no longer idle.
    virtual bool suspendIdle(uint64_t follower_id) = 0;
  };

  explicit FdBudget(uint64_t limit = kUnlimited);
  FdBudget(const FdBudget&) = delete;
  FdBudget& operator=(const FdBudget&) = delete;

  // The budget every InputTailer built without an explicit one uses: unlimited until the agent
  // configures it (configureProcessFdBudget).
  static FdBudget& process();

  void setLimit(uint64_t limit) { limit_ = limit == 0 ? 1 : limit; }
  uint64_t limit() const { return limit_; }
  uint64_t inUse() const { return in_use_; }
  uint64_t available() const { return in_use_ >= limit_ ? 0 : limit_ - in_use_; }

  // One unit as a lease (empty when the budget is spent). `tally`, if given, counts the leases
  // alive (incremented now, decremented when the lease is released); it must outlive them.
  FdLease lease(uint64_t* tally = nullptr);
  // Takes one unit if the budget has one (raw; prefer lease()).
  bool tryAcquire();
  // Returns one unit (a follower fd closed).
  void release();
  // open(2) or opendir(3) failed with EMFILE/ENFILE: the process has fewer descriptors than the
  // limit assumed (other fds, another limit). Lowers the limit a little below what followers
  // hold now, leaving room for sockets and checkpoints, and logs it. Counted by the caller.
  void exhausted(int err);
  // Suspends up to `want` idle followers of every holder, least recently active first. Returns
  // how many units were freed.
  uint64_t reclaim(uint64_t want);

  void attach(Holder* h);
  void detach(Holder* h);

 private:
  uint64_t limit_;
  uint64_t in_use_ = 0;
  std::vector<Holder*> holders_;
};

// One unit of a budget, held for the lifetime of the object: a follower holds one while its fd
// is open, and gives it back by destroying (or resetting) it. Moving it transfers the unit.
// A lease may also count itself in a tally of its holder (FdBudget::lease(tally)): the tailer's
// files_open gauge is the number of leases alive, not a counter kept by hand.
class FdLease {
 public:
  FdLease() = default;
  // Owns a unit already taken from `b` (tryAcquire() returned true).
  explicit FdLease(FdBudget& b) : budget_(&b) {}
  FdLease(FdLease&& o) noexcept : budget_(o.budget_), tally_(o.tally_) {
    o.budget_ = nullptr;
    o.tally_ = nullptr;
  }
  FdLease& operator=(FdLease&& o) noexcept {
    if (this != &o) {
      reset();
      budget_ = o.budget_;
      tally_ = o.tally_;
      o.budget_ = nullptr;
      o.tally_ = nullptr;
    }
    return *this;
  }
  FdLease(const FdLease&) = delete;
  FdLease& operator=(const FdLease&) = delete;
  ~FdLease() { reset(); }
  explicit operator bool() const { return budget_ != nullptr; }
  // Gives the unit back now.
  void reset() {
    if (budget_ != nullptr) budget_->release();
    if (tally_ != nullptr) --*tally_;
    budget_ = nullptr;
    tally_ = nullptr;
  }

 private:
  friend class FdBudget;
  FdLease(FdBudget& b, uint64_t* tally) : budget_(&b), tally_(tally) {
    if (tally_ != nullptr) ++*tally_;
  }

  FdBudget* budget_ = nullptr;
  uint64_t* tally_ = nullptr;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (common daemon practice: the default soft
// limit of 1024 exists for select(2), which the agent does not use).
void raiseFdLimit();

// min(max_open_files, soft RLIMIT_NOFILE - reserve), at least 1. `reserve` keeps descriptors
// for everything but followers: sockets, pipes, the inotify fd, checkpoints, the metrics server.
uint64_t effectiveFdBudget(uint64_t max_open_files, uint64_t reserve);

// At agent start: raiseFdLimit(), then sets FdBudget::process() to effectiveFdBudget() and logs
// the effective value once. Returns it.
uint64_t configureProcessFdBudget(uint64_t max_open_files, uint64_t reserve);

}  // namespace logsplice::inputs
