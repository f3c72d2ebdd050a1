#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include <functional>
#include <vector>

#include "sys/sys_calls.h"
#include "sys/unique_fd.h"
#include "config/config.h"
#include "inputs/fd_budget.h"
#include "inputs/file_identity.h"

namespace logsplice::inputs {

class FollowerOwner;

// One followed file: its open fd, identity, size and the end of its last complete line.
// Lives on the loop thread. The fd is shared (shared_ptr) so that a splice running on the I/O
// thread keeps it open even if the follower closes meanwhile.
//
// State machine. Every transition goes through setState(), which LS_ASSERTs it is one of:
//
//   kLive      -> kRotated          markRotated(): the path names another file or nothing now
//   kLive      -> kDeleted          refresh() sees st_nlink 0
//   kLive      -> kSuspended        suspend(): fd (and its budget lease) closed, still followed
//   kSuspended -> kLive             resume(): reopened by path (its file changed)
//   kSuspended -> kSuspendedRotated markRotated(): left its name while its fd was closed
//   kSuspendedRotated -> kRotated   resume(): found by inode in its directory, grown
//   kRotated   -> kDeleted          refresh() sees st_nlink 0
//   any        -> kClosed           markClosed(): released by the tailer; final
//
// kLive and kSuspended are live(): the configured path names this file. kRotated and kDeleted
// are drained from the open fd, then closed (a kSuspendedRotated one that has nothing new, or
// is not found, is closed as it is). Truncation (size < last seen size, or a head that no
// longer matches the fingerprint) is an event, not a state: it bumps generation() and keeps
// the state. A follower never returns to live once it left its name.
class Follower {
 public:
  enum class State { kLive, kSuspended, kRotated, kSuspendedRotated, kDeleted, kClosed };
  static const char* stateName(State s);

  // Public surface used by the router; the constructor/refresh API is the inputs' own.
  uint64_t id() const { return id_; }  // unique in this process, never reused
  const std::string& path() const { return path_; }
  const std::string& inputName() const { return input_name_; }
  const FileIdentity& identity() const { return identity_; }
  // -1 while suspended (drained and closed to save fds); the shared owner keeps it open for
  // jobs in flight.
  int fd() const { return fd_ ? fd_->get() : -1; }
  std::shared_ptr<const sys::UniqueFd> sharedFd() const { return fd_; }
  uint64_t size() const { return size_; }
  // Shippable bytes end here: past the last newline, or at a forced break.
  uint64_t completeEnd() const { return complete_end_; }
  // Offsets at which the router inserts a '\n' after the bytes before them: pieces of a line
  // longer than max_line_bytes, or a final line without newline once the file is rotated,
  // deleted or idle for partial_line_timeout. Sorted; pruned below every cursor.
  const std::set<uint64_t>& breaks() const { return breaks_; }
  void pruneBreaksBelow(uint64_t offset) {
    breaks_.erase(breaks_.begin(), breaks_.lower_bound(offset));
  }
  uint64_t generation() const { return generation_; }
  State state() const { return state_; }
  // The configured path names this file (kLive, or kSuspended).
  bool live() const { return state_ == State::kLive || state_ == State::kSuspended; }
  // Ask the owning tailer to look at this follower again soon (a sink caught up on a rotated
  // file: it may be closed now). Deferred: never closes the follower inside the caller's
  // callback; a follower closed meanwhile is skipped. A no-op without an owner.
  void requestRecheck();
  // Whether the input wants the read/write copy path (input option `copy`).
  bool copyMode() const { return copy_mode_; }

  // ---- The inputs' own API (InputTailer drives it; the router does not call these). ----

  // A follower of the open regular file `fd` whose head is `identity`. It starts with size 0;
  // the first refresh() measures the file (completeEnd, long-line breaks).
  Follower(uint64_t id, std::string path, std::string input_name, const FileIdentity& identity,
           sys::UniqueFd fd, bool copy_mode, uint64_t max_line_bytes, uint64_t now_ms,
           FdLease lease = {});
  virtual ~Follower() = default;

  // The tailer that owns it (null for a follower outside any tailer, e.g. in tests).
  void setOwner(FollowerOwner* owner) { owner_ = owner; }

  // A process-wide unique, never reused id.
  static uint64_t nextId();

  // What one refresh() found.
  struct Change {
    bool grew = false;       // completeEnd advanced or a break was added
    bool truncated = false;  // generation bumped, completeEnd recomputed from 0, breaks cleared
    bool deleted = false;    // st_nlink dropped to 0 now (state is kDeleted)
    uint64_t long_line_splits = 0;
    sys::Error error;  // fstat/pread failed; nothing else changed
  };
  // fstat + tail peek: size, deletion, truncation (size shrank, or the head no longer hashes to
  // the fingerprint), the fingerprint grown with the file below 1 KiB, the new completeEnd
  // (searching back only over bytes appended since the last refresh), long-line breaks.
  // Complete lines inside one appended batch are never split, even when longer than
  // max_line_bytes: finding them would mean scanning every byte.
  Change refresh(sys::SysCalls& sys, uint64_t now_ms);
  // A file that only grows has its head re-read at most this often (below 1 KiB: always).
  static constexpr uint64_t kHeadRecheckMs = 1000;
  // A head check was skipped (growth within kHeadRecheckMs of the last) and is still to do:
  // the next refresh() does it even if nothing changed.
  bool headCheckOwed() const { return head_owed_; }
  // Ends an unterminated final line: a break at size() (the router inserts the '\n'),
  // completeEnd = size. Bytes appended later to that line continue after the break, as a new
  // line. Returns whether a break was added.
  bool flushPartialLine();
  bool hasPartialLine() const { return size_ > complete_end_; }
  // Makes `offset` (completeEnd < offset <= size) a shipping boundary with a break: used when a
  // file is reopened where an earlier follower of it stopped, possibly mid-line.
  void breakAt(uint64_t offset);
  // The configured path no longer names this file (moved, or replaced by another file):
  // kLive -> kRotated, kSuspended -> kSuspendedRotated.
  void markRotated(uint64_t now_ms);
  // Final: the tailer released it (drained, retention, or shutdown). Drops the fd and lease.
  void markClosed();
  // When size() last changed (or the follower was created).
  uint64_t lastChangeMs() const { return last_change_ms_; }
  // Where the bytes appended since the refresh before the last one start (the file's size
  // then), or UINT64_MAX when the last refresh saw no plain growth. Bytes written that recently
  // are in the page cache (dirty pages are not evicted before writeback, 30 s by default): the
  // router splices them on the loop without probing residency.
  uint64_t freshFrom() const { return fresh_from_; }
  // When the follower left kLive (0 while live).
  uint64_t leftLiveMs() const { return left_live_ms_; }

  // Suspension, to stay under the open-file budget: the tailer closes the fd of an idle live
  // file every sink has caught up on (kLive -> kSuspended, the lease goes back to the budget),
  // and reopens it by path when the file changes. Meanwhile fd() is -1, refresh() does nothing
  // and size, completeEnd and identity keep their last values. A fill job still holding
  // sharedFd() keeps the file open (none exists for a drained file).
  void suspend();
  // The fd is closed: kSuspended or kSuspendedRotated.
  bool suspended() const {
    return state_ == State::kSuspended || state_ == State::kSuspendedRotated;
  }
  // `fd` is this file again (the caller checked the inode); the next refresh() measures it.
  // kSuspended -> kLive, kSuspendedRotated -> kRotated.
  void resume(sys::UniqueFd fd, FdLease lease = {});
  // Whether a stat of the file (by path, while suspended) shows a change since the last
  // refresh: another size, mtime or ctime.
  bool changedSince(const struct stat& st) const;

  // ---- Transitions that look at the filesystem (follower_fs.cc). ----

  // What the configured path names now, for a live follower.
  enum class NameCheck {
    kThisFile,     // still this file, unchanged since the last refresh
    kThisChanged,  // still this file, with another size/mtime/ctime (suspended: reopen it)
    kGone,         // another file, or nothing (ENOENT/ENOTDIR): it was rotated
    kUnknown,      // cannot tell (EACCES on a directory...): keep it as it is
  };
  NameCheck checkName() const;
  // How a reopen of a suspended follower ended.
  struct Reopen {
    enum Kind {
      kResumed,     // fd open again (state kLive or kRotated)
      kNothingNew,  // kSuspendedRotated found under `path` with no byte appended: close it
      kMissing,     // kSuspendedRotated not found in its directory: close it
      kGone,        // kSuspended: its path names another file or nothing now (not reopened)
      kNoFd,        // no lease, or EMFILE/ENFILE (`err`): wait for a descriptor
      kError,       // open/fstat failed (`err`, e.g. EACCES): tried again at the next change
    } kind = kError;
    int err = 0;
    std::string path;  // the name it was opened or found under
  };
  // kSuspended: reopens by path, checking the inode. kSuspendedRotated: looks for its inode in
  // `dir` (a rename in place keeps the directory) and reopens it there if it grew since it was
  // suspended. `lease` is asked for a unit only when a file is about to be opened.
  Reopen reopen(const std::string& dir, const std::function<FdLease()>& lease);

 protected:
  Follower() = default;
  // The one place the state changes: asserts the transition is legal, tells the owner.
  void setState(State next);
  static bool legal(State from, State to);

  uint64_t id_ = 0;
  std::string path_;
  std::string input_name_;
  FileIdentity identity_;
  std::shared_ptr<sys::UniqueFd> fd_;
  uint64_t size_ = 0;
  uint64_t complete_end_ = 0;
  std::set<uint64_t> breaks_;
  uint64_t generation_ = 0;
  State state_ = State::kLive;
  bool copy_mode_ = false;

 private:
  FollowerOwner* owner_ = nullptr;
  FdLease lease_;                // the budget unit held while fd_ is open
  uint64_t max_line_bytes_ = 0;  // 0: no limit
  uint64_t last_change_ms_ = 0;
  // (mtime, ctime) at the last refresh: a same-size rewrite (truncated and refilled to the very
  // size seen) changes them, so the head is re-checked then too.
  int64_t stamp_ns_[2] = {0, 0};
  uint64_t left_live_ms_ = 0;
  uint64_t fresh_from_ = UINT64_MAX;
  // The head is re-read on growth at most once per kHeadRecheckMs (see refresh()); a skipped
  // check is owed and done on the next refresh even when nothing changed.
  uint64_t head_checked_ms_ = UINT64_MAX;  // never
  bool head_owed_ = false;
};

// Who owns a follower (its InputTailer). Loop thread only.
class FollowerOwner {
 public:
  virtual ~FollowerOwner() = default;
  // Follower::requestRecheck(): look at f again soon (it may be closable now), never from
  // inside this call.
  virtual void recheckSoon(Follower& f) = 0;
  // f changed state (from `from` to f.state()): the owner's indexes follow.
  virtual void followerStateChanged(Follower& f, Follower::State from) = 0;
};

}  // namespace logsplice::inputs
