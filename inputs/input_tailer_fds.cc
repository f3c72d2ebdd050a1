// InputTailer and the open-file budget: suspending idle followers, reopening them by path (or by
// inode once rotated), and the queue of files waiting for a descriptor. See input_tailer.h.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "inputs/input_tailer_impl.h"

namespace logsplice::inputs {
namespace {

constexpr uint64_t kRetryMinMs = 20;
constexpr uint64_t kRetryMaxMs = 1000;
constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

FollowerTable::InodeKey keyOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

}  // namespace

FdGrant InputTailer::Impl::acquireFd() {
  // First come, first served: while files wait, newcomers queue behind them.
  bool queued = !waiting_opens_.empty() || !waiting_resumes_.empty() || !waiting_known_.empty();
  if (queued && !draining_queue_) return {};
  if (budget_.tryAcquire()) return FdGrant(budget_);
  // Spent: close a few idle files at once (least recently active first, any input), so that
  // each open beyond the budget does not pay for a full pass over the followers.
  uint64_t batch = std::clamp<uint64_t>(budget_.limit() / 64, 1, 64);
  if (budget_.reclaim(batch) > 0 && budget_.tryAcquire()) return FdGrant(budget_);
  return {};
}

bool InputTailer::Impl::suspendable(const Follower& f) const {
  return f.state() == Follower::State::kLive && !f.suspended() && !f.hasPartialLine() &&
         observer_.fileDrained(f);
}

void InputTailer::Impl::collectIdle(std::vector<Idle>& out) {
  if (closing_) return;
  for (uint64_t id : table_.ids()) {
    const Follower* f = table_.byId(id);
    if (f != nullptr && suspendable(*f)) out.push_back({f->lastChangeMs(), this, id});
  }
}

bool InputTailer::Impl::suspendIdle(uint64_t follower_id) {
  Follower* f = table_.byId(follower_id);
  if (closing_ || f == nullptr || !suspendable(*f)) return false;
  f->suspend();
  releaseFd();
  ++suspended_count_;
  ++stats_.suspensions;
  if (!noted_suspending_) {
    noted_suspending_ = true;
    spdlog::info(
        "input '{}': more files than the open-file budget ({}): idle files every sink has "
        "caught up on are closed, and reopened by path when they grow",
        cfg_.name, budget_.limit());
  }
  spdlog::debug("input '{}': suspended {} at {} bytes (fd closed until it changes)", cfg_.name,
                f->path(), f->size());
  syncGauges();
  return true;
}

void InputTailer::Impl::noteWaiting(const std::string& what) {
  armRetry();
  if (warned_waiting_) return;
  warned_waiting_ = true;
  spdlog::warn(
      "input '{}': no file descriptor for {}: the open-file budget is spent ({} of {} in use) "
      "and no followed file is idle and delivered; files wait and are opened as soon as one "
      "frees up",
      cfg_.name, what, budget_.inUse(), budget_.limit());
}

void InputTailer::Impl::waitForFd(const OpenRequest& req) {
  if (closing_) return;
  if (waiting_paths_.insert(req.path).second) waiting_opens_.push_back(req);
  noteWaiting(req.path);
}

void InputTailer::Impl::waitForFd(uint64_t follower_id) {
  if (closing_) return;
  if (waiting_resume_ids_.insert(follower_id).second) waiting_resumes_.push_back(follower_id);
  const Follower* f = table_.byId(follower_id);
  noteWaiting(f != nullptr ? f->path() : std::string("a suspended file"));
}

void InputTailer::Impl::waitForFd(const KnownFile& k) {
  if (closing_) return;
  for (const auto& w : waiting_known_) {
    if (w.identity.sameInode(k.identity)) return;
  }
  waiting_known_.push_back(k);
  noteWaiting(k.path);
}

void InputTailer::Impl::noteFdShortage(int err, const std::string& what) {
  ++stats_.fd_exhaustions;
  budget_.exhausted(err);
  if (warned_shortage_) return;
  warned_shortage_ = true;
  spdlog::warn("input '{}': {} for {}: waiting for a descriptor (retried, nothing is dropped)",
               cfg_.name, std::strerror(err), what);
}

void InputTailer::Impl::armRetry() {
  if (closing_ || !fd_retry_ || uv_is_active(reinterpret_cast<uv_handle_t*>(fd_retry_.get()))) {
    return;
  }
  if (retry_ms_ == 0) retry_ms_ = kRetryMinMs;
  uv_timer_start(
      fd_retry_.get(), [](uv_timer_t* h) { static_cast<Impl*>(h->data)->retryWaiting(); },
      retry_ms_, 0);
}

void InputTailer::Impl::retryWaiting() {
  if (closing_) return;
  Entry entry(*this);
  uint64_t t = now();
  size_t before = waiting_opens_.size() + waiting_resumes_.size() + waiting_known_.size();
  if (before > budget_.available()) budget_.reclaim(before - budget_.available());
  draining_queue_ = true;
  if (rescan_wanted_) {
    rescan_wanted_ = false;
    rescan(t);  // asks again if it is still short
  }
  // Each queue is walked at most once per retry: an entry that has to wait again goes to the
  // back and is not met again before the next retry.
  for (size_t n = waiting_resumes_.size(); n > 0 && budget_.available() > 0; --n) {
    uint64_t id = waiting_resumes_.front();
    waiting_resumes_.pop_front();
    waiting_resume_ids_.erase(id);
    Follower* f = table_.byId(id);
    if (f == nullptr || !f->suspended()) continue;
    reopen(*f, t);
  }
  for (size_t n = waiting_known_.size(); n > 0 && budget_.available() > 0; --n) {
    KnownFile k = waiting_known_.front();
    waiting_known_.erase(waiting_known_.begin());
    openKnown(k, t);
  }
  for (size_t n = waiting_opens_.size(); n > 0 && budget_.available() > 0; --n) {
    OpenRequest req = std::move(waiting_opens_.front());
    waiting_opens_.pop_front();
    waiting_paths_.erase(req.path);
    if (req.state == Follower::State::kLive) {
      considerRequest(std::move(req), t, nullptr);  // the name may have changed meanwhile
    } else {
      openFollower(req, t);
    }
  }
  draining_queue_ = false;
  size_t after = waiting_opens_.size() + waiting_resumes_.size() + waiting_known_.size();
  if (!waitingForFd()) {
    retry_ms_ = 0;
    if (warned_waiting_ || warned_shortage_) {
      spdlog::info("input '{}': every file that waited for a descriptor is open now", cfg_.name);
    }
    warned_waiting_ = false;
    warned_shortage_ = false;
    return;
  }
  // Nothing freed up (every file lags, a collector is down): look less often, up to 1 s.
  retry_ms_ = after < before ? kRetryMinMs : std::min(retry_ms_ * 2, kRetryMaxMs);
  armRetry();
}

void InputTailer::Impl::checkSuspended(Follower& f, uint64_t now) {
  if (f.state() != Follower::State::kLive) return;
  struct stat st;
  if (::stat(f.path().c_str(), &st) == 0) {
    if (keyOf(st) == FollowerTable::keyOf(f.identity())) {
      if (f.changedSince(st)) reopen(f, now);
      return;
    }
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return;  // cannot tell (EACCES on a directory...): keep it as it is
  }
  rotatedWhileSuspended(f, now);
}

void InputTailer::Impl::rotatedWhileSuspended(Follower& f, uint64_t now) {
  f.markRotated(now);
  table_.leftLive(f);
  ++stats_.rotations;
  spdlog::info(
      "input '{}': {} rotated while its fd was closed (idle, beyond the open-file budget); "
      "looking for {} in its directory",
      cfg_.name, f.path(), f.identity().toString());
  reopen(f, now);
}

void InputTailer::Impl::reopen(Follower& f, uint64_t now) {
  if (f.state() != Follower::State::kLive) {
    reopenRotated(f, now);
    return;
  }
  FdGrant grant = acquireFd();
  if (!grant) {
    waitForFd(f.id());
    return;
  }
  sys::UniqueFd fd(::open(f.path().c_str(), kOpenFlags));
  if (!fd) {
    int err = errno;
    grant.reset();
    if (isFdShortage(err)) {
      noteFdShortage(err, f.path());
      waitForFd(f.id());
    } else if (err == ENOENT || err == ENOTDIR) {
      rotatedWhileSuspended(f, now);  // gone since the stat
    } else {
      noteOpenError(f.path(), err);  // EACCES...: tried again at the next change or rescan
    }
    return;
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    noteOpenError(f.path(), errno);
    return;
  }
  if (keyOf(st) != FollowerTable::keyOf(f.identity())) {
    fd.reset();  // replaced between the stat and the open
    grant.reset();
    rotatedWhileSuspended(f, now);
    return;
  }
  f.resume(std::move(fd));
  holdFd(grant);
  if (suspended_count_ > 0) --suspended_count_;
  ++stats_.reopens;
  open_errors_.erase(f.path());
  spdlog::debug("input '{}': reopened {} (was {} bytes)", cfg_.name, f.path(), f.size());
  // A head that no longer matches the fingerprint is a truncation (copytruncate) here too.
  refreshAndApply(f, now);
}

void InputTailer::Impl::reopenRotated(Follower& f, uint64_t now) {
  // A rename in place (app.log -> app.log.1) keeps the inode in the same directory (that of
  // the symlink's target for a symlinked path).
  std::string dir = dirName(table_.realPathOf(f));
  auto key = FollowerTable::keyOf(f.identity());
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_ino == f.identity().ino) names.emplace_back(e->d_name);
    }
    ::closedir(d);
  } else if (isFdShortage(errno)) {
    noteFdShortage(errno, dir);
    waitForFd(f.id());
    return;
  }
  for (const auto& name : names) {
    std::string path = joinPath(dir, name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || keyOf(st) != key || !S_ISREG(st.st_mode)) continue;
    // Size, not timestamps: a rename changes the ctime.
    if (static_cast<uint64_t>(std::max<off_t>(st.st_size, 0)) == f.size()) {
      // Nothing was appended between the suspension and the rotation: every byte is shipped.
      spdlog::info("input '{}': {} is now {}, with nothing new; closing it", cfg_.name, f.path(),
                   path);
      deferred_.insert(f.id());
      return;
    }
    FdGrant grant = acquireFd();
    if (!grant) {
      waitForFd(f.id());
      return;
    }
    sys::UniqueFd fd(::open(path.c_str(), kOpenFlags));
    if (!fd) {
      int err = errno;
      grant.reset();
      if (isFdShortage(err)) {
        noteFdShortage(err, path);
        waitForFd(f.id());
        return;
      }
      continue;
    }
    if (::fstat(fd.get(), &st) != 0 || keyOf(st) != key) continue;
    auto same = stillMatches(fd.get(), st, f.identity());
    if (!same.ok() || !*same) continue;  // the inode number was reused by another file
    f.resume(std::move(fd));
    holdFd(grant);
    if (suspended_count_ > 0) --suspended_count_;
    ++stats_.reopens;
    spdlog::info(
        "input '{}': found {} as {}; reading what was appended before the rotation, then "
        "closing it",
        cfg_.name, f.path(), path);
    refreshAndApply(f, now);
    return;
  }
  // Deleted, or moved to another directory: it was delivered up to its size when suspended,
  // and bytes appended after that cannot be read any more (an open fd would have kept them).
  spdlog::info(
      "input '{}': {} ({}) left {} while its fd was closed; closing it (everything up to {} "
      "bytes was delivered)",
      cfg_.name, f.path(), f.identity().toString(), dir, f.size());
  deferred_.insert(f.id());
}

void InputTailer::Impl::syncGauges() {
  stats_.files_followed = table_.size();
  stats_.files_open = held_fds_;
  stats_.files_suspended = suspended_count_;
  stats_.files_waiting_for_fd =
      waiting_opens_.size() + waiting_resumes_.size() + waiting_known_.size();
}

}  // namespace logsplice::inputs
