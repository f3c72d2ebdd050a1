#include "inputs/follower.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>

#include "inputs/line_end.h"
#include "sys/assert.h"

namespace logsplice::inputs {

uint64_t Follower::nextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

Follower::Follower(uint64_t id, std::string path, std::string input_name,
                   const FileIdentity& identity, sys::UniqueFd fd, bool copy_mode,
                   uint64_t max_line_bytes, uint64_t now_ms, FdLease lease)
    : id_(id),
      path_(std::move(path)),
      input_name_(std::move(input_name)),
      identity_(identity),
      fd_(std::make_shared<sys::UniqueFd>(std::move(fd))),
      copy_mode_(copy_mode),
      lease_(std::move(lease)),
      max_line_bytes_(max_line_bytes),
      last_change_ms_(now_ms) {}

const char* Follower::stateName(State s) {
  switch (s) {
    case State::kLive:
      return "live";
    case State::kSuspended:
      return "suspended";
    case State::kRotated:
      return "rotated";
    case State::kSuspendedRotated:
      return "rotated (suspended)";
    case State::kDeleted:
      return "deleted";
    case State::kClosed:
      return "closed";
  }
  return "?";
}

bool Follower::legal(State from, State to) {
  if (to == State::kClosed) return from != State::kClosed;
  switch (from) {
    case State::kLive:
      return to == State::kRotated || to == State::kDeleted || to == State::kSuspended;
    case State::kSuspended:
      return to == State::kLive || to == State::kSuspendedRotated;
    case State::kSuspendedRotated:
      return to == State::kRotated;
    case State::kRotated:
      return to == State::kDeleted;
    case State::kDeleted:
    case State::kClosed:
      return false;
  }
  return false;
}

void Follower::setState(State next) {
  LS_ASSERT(legal(state_, next), "illegal follower state transition");
  State from = state_;
  state_ = next;
  if (owner_ != nullptr) owner_->followerStateChanged(*this, from);
}

void Follower::requestRecheck() {
  if (owner_ != nullptr && state_ != State::kClosed) owner_->recheckSoon(*this);
}

void Follower::markRotated(uint64_t now_ms) {
  LS_ASSERT(live(), "only a live follower can leave its name");
  left_live_ms_ = now_ms;
  setState(state_ == State::kLive ? State::kRotated : State::kSuspendedRotated);
}

void Follower::markClosed() {
  fd_.reset();
  lease_.reset();
  setState(State::kClosed);
}

void Follower::suspend() {
  LS_ASSERT(state_ == State::kLive, "only a live follower with an fd can be suspended");
  fd_.reset();
  lease_.reset();
  setState(State::kSuspended);
}

void Follower::resume(sys::UniqueFd fd, FdLease lease) {
  LS_ASSERT(suspended(), "only a suspended follower can be resumed");
  fd_ = std::make_shared<sys::UniqueFd>(std::move(fd));
  lease_ = std::move(lease);
  setState(state_ == State::kSuspended ? State::kLive : State::kRotated);
}

bool Follower::changedSince(const struct stat& st) const {
  uint64_t size = st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return size != size_ || st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != stamp_ns_[0] ||
         st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec != stamp_ns_[1];
}

bool Follower::flushPartialLine() {
  if (size_ <= complete_end_) return false;
  complete_end_ = size_;
  breaks_.insert(size_);
  return true;
}

void Follower::breakAt(uint64_t offset) {
  if (offset <= complete_end_ || offset > size_) return;
  complete_end_ = offset;
  breaks_.insert(offset);
}

Follower::Change Follower::refresh(sys::SysCalls& sys, uint64_t now_ms) {
  Change c;
  int fd = this->fd();
  if (fd < 0) return c;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    c.error = sys::Error::fromErrno(errno, "fstat " + path_);
    return c;
  }
  if (st.st_nlink == 0 && state_ != State::kDeleted) {
    if (state_ == State::kLive) left_live_ms_ = now_ms;
    setState(State::kDeleted);
    c.deleted = true;
  }
  uint64_t new_size = st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  int64_t stamp[2] = {st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                      st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
  bool touched = stamp[0] != stamp_ns_[0] || stamp[1] != stamp_ns_[1];
  stamp_ns_[0] = stamp[0];
  stamp_ns_[1] = stamp[1];
  // Unchanged size and timestamps: nothing to do (the common refresh of an idle file). With
  // coarse timestamps (kernels before multigrain ctime, 6.13) a same-size rewrite within one
  // clock tick goes unnoticed until the file changes size.
  if (new_size == size_ && !touched && !head_owed_) return c;

  // The head is re-read on size changes: below 1 KiB the fingerprint grows with the file, and a
  // different head under the same inode means truncated and rewritten (copytruncate), even when
  // the file has regrown past the size seen last. A file that keeps growing past a full
  // fingerprint has it re-read at most once a second: a truncation is nearly always seen as a
  // shrink, and one hidden by fast regrowth is caught at the next check (≤ 1 s, or the next
  // rescan if the file went quiet): its new head is then shipped from 0, bytes already shipped
  // from the old offset are sent again. Duplicates, never a loss.
  bool plain_growth =
      new_size > size_ && identity_.fingerprint_len >= FileIdentity::kFingerprintBytes;
  bool rewritten = false;
  if (plain_growth && head_checked_ms_ != UINT64_MAX && now_ms >= head_checked_ms_ &&
      now_ms - head_checked_ms_ < kHeadRecheckMs) {
    head_owed_ = true;
  } else {
    auto head = checkHead(fd, st, identity_);
    if (!head.ok()) {
      c.error = head.error();
      return c;
    }
    head_checked_ms_ = now_ms;
    head_owed_ = false;
    rewritten = !head->matches;
    identity_ = head->current;
  }
  if (new_size == size_ && !rewritten) {
    fresh_from_ = UINT64_MAX;
    return c;  // touched (attributes, a zero-byte write) but the same bytes as far as we know
  }
  last_change_ms_ = now_ms;
  uint64_t searched_to = size_;  // [completeEnd, size_) is known to hold no '\n'
  uint64_t old_complete_end = complete_end_;
  if (new_size < size_ || rewritten) {
    ++generation_;
    breaks_.clear();
    complete_end_ = 0;
    searched_to = 0;
    old_complete_end = 0;
    c.truncated = true;
    fresh_from_ = UINT64_MAX;
  } else {
    fresh_from_ = size_;
  }

  uint64_t from = std::max(complete_end_, searched_to);
  auto end = findLastLineEnd(sys, fd, from, new_size);
  if (!end.ok()) {
    c.error = end.error();
    return c;
  }
  if (*end > from) complete_end_ = *end;
  size_ = new_size;
  while (max_line_bytes_ > 0 && size_ - complete_end_ > max_line_bytes_) {
    complete_end_ += max_line_bytes_;
    breaks_.insert(complete_end_);
    ++c.long_line_splits;
  }
  c.grew = complete_end_ != old_complete_end || c.long_line_splits > 0;
  return c;
}

}  // namespace logsplice::inputs
