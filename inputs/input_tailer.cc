#include "inputs/input_tailer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "inputs/input_tailer_impl.h"
#include "inputs/line_end.h"

namespace logsplice::inputs {
namespace {

using InodeKey = FollowerTable::InodeKey;

InodeKey keyOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

const char* stateName(Follower::State s) {
  switch (s) {
    case Follower::State::kLive:
      return "live";
    case Follower::State::kRotated:
      return "rotated";
    case Follower::State::kDeleted:
      return "deleted";
  }
  return "?";
}

}  // namespace

InputTailer::Impl::Impl(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer,
                        FdBudget& budget)
    : loop_(loop), cfg_(cfg), observer_(observer), budget_(budget), discovery_(loop, cfg_, *this) {
  budget_.attach(this);
}

InputTailer::Impl::~Impl() {
  budget_.detach(this);
  // Followers still open (close() was not called) give their units back as the table goes.
  while (held_fds_ > 0) releaseFd();
}

uint64_t InputTailer::Impl::tickMs() const {
  auto shortest = std::min(cfg_.partial_line_timeout, cfg_.rotate_wait).count() / 4;
  return static_cast<uint64_t>(std::clamp<int64_t>(shortest, 10, 250));
}

sys::Error InputTailer::Impl::start(bool at_startup, const std::vector<KnownFile>& known) {
  if (started_ || closing_) return sys::Error::invalidArgument("input tailer already started");
  if (sys::Error err = discovery_.init()) return err;
  int rc = tick_.init([this](uv_timer_t* t) { return uv_timer_init(loop_, t); }, this);
  if (rc == 0) rc = rescan_.init([this](uv_timer_t* t) { return uv_timer_init(loop_, t); }, this);
  if (rc == 0) rc = fd_retry_.init([this](uv_timer_t* t) { return uv_timer_init(loop_, t); }, this);
  if (rc != 0) return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
  started_ = true;
  Entry entry(*this);
  uint64_t t = now();
  for (const auto& k : known) openKnown(k, t);
  startup_scan_ = at_startup;
  rescan(t);
  startup_scan_ = false;
  stats_.rescans = 0;  // the initial scan is not a re-scan
  discovery_.start();
  uint64_t tick = tickMs();
  uv_timer_start(
      tick_.get(), [](uv_timer_t* h) { static_cast<Impl*>(h->data)->onTick(); }, tick, tick);
  auto every = static_cast<uint64_t>(std::max<int64_t>(cfg_.rescan_interval.count(), 10));
  uv_timer_start(
      rescan_.get(), [](uv_timer_t* h) { static_cast<Impl*>(h->data)->rescanNeeded(false); }, every,
      every);
  return sys::Error::ok();
}

void InputTailer::Impl::stop() {
  discovery_.stop();
  if (tick_) uv_timer_stop(tick_.get());
  if (rescan_) uv_timer_stop(rescan_.get());
  if (fd_retry_) uv_timer_stop(fd_retry_.get());
}

void InputTailer::Impl::close(std::function<void()> on_closed) {
  if (closing_) return;
  closing_ = true;
  stop();
  deferred_.clear();
  partial_.clear();
  waiting_opens_.clear();
  waiting_paths_.clear();
  waiting_resumes_.clear();
  waiting_resume_ids_.clear();
  waiting_known_.clear();
  rescan_wanted_ = false;
  for (uint64_t id : table_.ids()) {
    observer_.fileClosing(*table_.byId(id));
    std::unique_ptr<Follower> owned = table_.remove(id);
    if (owned && !owned->suspended()) releaseFd();
  }
  suspended_count_ = 0;
  budget_.detach(this);
  syncGauges();
  auto pending = std::make_shared<int>(4);
  auto done = [pending, cb = std::move(on_closed)]() {
    if (--*pending == 0 && cb) cb();
  };
  tick_.close(done);
  rescan_.close(done);
  fd_retry_.close(done);
  discovery_.close(done);
}

void InputTailer::Impl::poke(const Follower& f) {
  if (closing_) return;
  if (depth_ > 0) {
    deferred_.insert(f.id());
    return;
  }
  Entry entry(*this);
  checkClose(f.id(), now());
}

void InputTailer::Impl::runDeferred() {
  while (!deferred_.empty() && !closing_) {
    uint64_t id = *deferred_.begin();
    deferred_.erase(deferred_.begin());
    checkClose(id, now());
  }
}

void InputTailer::Impl::rescanNeeded(bool overflow) {
  if (closing_) return;
  Entry entry(*this);
  if (overflow) {
    ++stats_.inotify_overflows;
    spdlog::warn(
        "input '{}': inotify queue overflowed (IN_Q_OVERFLOW); rescanning every "
        "watched directory",
        cfg_.name);
  }
  ++stats_.rescans;
  rescan(now());
}

void InputTailer::Impl::rescan(uint64_t now) {
  std::set<InodeKey> seen;
  std::set<std::string> seen_paths;
  scan_unchanged_.clear();
  int fd_err = discovery_.scan([&](const std::string& path) {
    seen_paths.insert(path);
    consider(path, true, now, &seen);
  });
  for (uint64_t id : table_.ids()) {
    Follower* f = table_.byId(id);
    if (f == nullptr) continue;
    if (f->state() == Follower::State::kLive) {
      // The scan's stat of its path already showed it the same file, unchanged: nothing to do.
      // An idle file costs one stat per rescan, not three.
      if (scan_unchanged_.count(id) == 0) checkLive(*f, now);
    } else {
      refreshAndApply(*f, now);
    }
  }
  stats_.polling = discovery_.polling();
  if (fd_err != 0) {
    // Some directory could not be listed: the scan saw only part of the files. Nothing is
    // pruned on its word; it runs again once descriptors are free.
    noteFdShortage(fd_err, "listing the watched directories");
    rescan_wanted_ = true;
    armRetry();
    return;
  }
  table_.pruneFinished(seen);
  for (auto it = open_errors_.begin(); it != open_errors_.end();) {
    it = seen_paths.count(it->first) ? std::next(it) : open_errors_.erase(it);
  }
}

void InputTailer::Impl::entriesChanged(const std::vector<WatchHandler::Event>& events) {
  if (closing_) return;
  Entry entry(*this);
  uint64_t t = now();
  // Every event is only a hint: each touched name is re-derived from stat, once per batch.
  std::map<std::string, Touch> paths;
  std::map<uint32_t, bool> moved_from;  // rename cookie -> the old name was ours
  std::vector<std::string> moved_targets;
  for (const auto& ev : events) {
    std::string path = joinPath(ev.dir, ev.name);
    bool removed = ev.kind == WatchHandler::Kind::kRemoved;
    bool content = ev.kind == WatchHandler::Kind::kContent && !ev.is_dir;
    auto [it, fresh] = paths.emplace(path, Touch{removed, content});
    if (!fresh) {
      it->second.removed_only = it->second.removed_only && removed;
      it->second.content_only = it->second.content_only && content;
    }
    if (ev.cookie != 0 && removed) {
      moved_from[ev.cookie] = discovery_.isCandidate(path) || table_.liveAt(path) != nullptr;
    } else if (ev.cookie != 0 && ev.kind == WatchHandler::Kind::kCreated) {
      auto from = moved_from.find(ev.cookie);
      if (from != moved_from.end() && from->second && !discovery_.isCandidate(path)) {
        moved_targets.push_back(path);
      }
    }
  }
  for (const auto& [path, touch] : paths) handlePath(path, touch, t);
  // A file renamed from one of our names to a name outside the globs, which we never opened
  // (it was created and rotated between two event batches): follow it as rotated from 0.
  for (const auto& path : moved_targets) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (table_.byInode(keyOf(st)) != nullptr || table_.finished(keyOf(st)) != nullptr) continue;
    OpenRequest req;
    req.path = path;
    req.state = Follower::State::kRotated;
    openFollower(req, t);
  }
  refreshNonLive(t);
  stats_.polling = discovery_.polling();
}

void InputTailer::Impl::handlePath(const std::string& path, Touch touch, uint64_t now) {
  if (Follower* f = table_.liveAt(path)) {
    if (touch.content_only && !f->suspended()) {
      // Only writes were reported under this name, so it still names the file we follow: any
      // rename or create would have come as an event of its own. The common event (an append)
      // costs one fstat and the tail peek, no path lookups.
      refreshAndApply(*f, now);
      if (f->state() == Follower::State::kLive) return;
    } else {
      checkLive(*f, now);
    }
  }
  for (uint64_t id : table_.byRealPath(path)) {
    if (Follower* f = table_.byId(id)) {
      if (f->state() == Follower::State::kLive) {
        checkLive(*f, now);
      } else {
        refreshAndApply(*f, now);
      }
    }
  }
  if (!touch.removed_only && discovery_.isCandidate(path)) consider(path, false, now, nullptr);
}

void InputTailer::Impl::consider(const std::string& path, bool from_scan, uint64_t now,
                                 std::set<InodeKey>* seen) {
  OpenRequest req;
  req.path = path;
  req.from_scan = from_scan;
  req.at_startup = startup_scan_;
  considerRequest(std::move(req), now, seen);
}

void InputTailer::Impl::considerRequest(OpenRequest req, uint64_t now, std::set<InodeKey>* seen) {
  const std::string& path = req.path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    struct stat lst;
    if (err == ELOOP ||
        (err == ENOENT && ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))) {
      noteSkippedLink(path, err);
      return;
    }
    // Gone between the listing (or event) and now: normal during rotation. Reported only when
    // a scan listed it, and then once.
    if (req.from_scan && err != ENOENT) noteOpenError(path, err);
    return;
  }
  if (!S_ISREG(st.st_mode)) return;  // FIFOs, devices, directories are not tailed
  if (seen != nullptr) seen->insert(keyOf(st));
  if (Follower* f = table_.byInode(keyOf(st))) {
    // Known under this or another name (a rename inside the globs, a hard link, a symlink).
    if (f->state() != Follower::State::kLive) {
      refreshAndApply(*f, now);
    } else if (seen != nullptr && f->path() == path && !f->changedSince(st) &&
               !f->headCheckOwed()) {
      scan_unchanged_.insert(f->id());
    }
    return;
  }
  // Another file now has the name of a live follower: that one was rotated away first.
  if (Follower* f = table_.liveAt(path)) checkLive(*f, now);
  if (req.at_startup) {
    req.startup_size = std::min<uint64_t>(req.startup_size, static_cast<uint64_t>(st.st_size));
  }
  openFollower(req, now);
}

Follower* InputTailer::Impl::openFollower(const OpenRequest& req, uint64_t now) {
  const std::string& path = req.path;
  FdGrant grant = acquireFd();
  if (!grant) {
    waitForFd(req);
    return nullptr;
  }
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (raw < 0) {
    int err = errno;
    grant.reset();
    if (isFdShortage(err)) {
      // Not "cannot open": the process is out of descriptors. Retried once one frees up.
      noteFdShortage(err, path);
      waitForFd(req);
      return nullptr;
    }
    if (req.from_scan || err != ENOENT) noteOpenError(path, err);
    return nullptr;
  }
  sys::UniqueFd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    noteOpenError(path, errno);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode) || table_.byInode(keyOf(st)) != nullptr) return nullptr;

  uint64_t resume = 0;
  if (const FollowerTable::Finished* fin = table_.finished(keyOf(st))) {
    auto head = checkHead(fd.get(), st, fin->identity);
    if (head.ok() && head->matches) {
      if (static_cast<uint64_t>(st.st_size) <= fin->size) return nullptr;  // nothing new
      resume = fin->size;  // appended to after we closed it: ship only the new bytes
    } else {
      table_.forgetFinished(keyOf(st));  // the inode was reused by another file
    }
  }
  auto identity = identify(fd.get(), st);
  if (!identity.ok()) {
    noteOpenError(path, identity.error().sysErrno());
    return nullptr;
  }
  open_errors_.erase(path);

  std::string real_path = path;
  struct stat lst;
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) != nullptr) real_path = buf;
  }
  auto owned = std::make_unique<Follower>(Follower::nextId(), path, cfg_.name, *identity,
                                          std::move(fd), cfg_.copy, cfg_.max_line_bytes, now);
  if (req.state != Follower::State::kLive) owned->markRotated(now);
  Follower& f = table_.add(std::move(owned), real_path);
  holdFd(grant);
  uint64_t id = f.id();
  if (real_path != path) discovery_.watchExtra(dirName(real_path));
  ++stats_.files_discovered;
  stats_.files_followed = table_.size();

  Follower::Change c = f.refresh(sys_, now);
  if (f.hasPartialLine()) partial_.insert(id);
  if (c.error) spdlog::warn("input '{}': reading {}: {}", cfg_.name, path, c.error.toString());
  stats_.long_line_splits += c.long_line_splits;
  if (c.deleted) {
    ++stats_.deletions;
    table_.leftLive(f);
  }
  uint64_t default_start = 0;
  if (resume > 0) {
    f.breakAt(resume);
    default_start = resume;
  } else if (req.at_startup && cfg_.start_at == config::StartAt::kEnd &&
             req.state == Follower::State::kLive) {
    // The end of the last complete line, not the size: a line being written at start-up is
    // shipped whole once its newline arrives. A file that waited for an fd ships what was
    // appended since the start-up scan saw it.
    default_start = f.completeEnd();
    if (req.startup_size < f.size()) {
      auto end = findLastLineEnd(sys_, f.fd(), 0, req.startup_size);
      if (end.ok()) default_start = std::min(default_start, *end);
    }
  }
  spdlog::info("input '{}': following {} ({}, {}) from offset {} of {}", cfg_.name, path,
               f.identity().toString(), stateName(f.state()), default_start, f.size());
  observer_.fileOpened(f, default_start);
  if (table_.byId(id) != nullptr && f.completeEnd() > default_start) observer_.fileGrew(f);
  return table_.byId(id);
}

void InputTailer::Impl::openKnown(const KnownFile& k, uint64_t now) {
  struct stat st;
  if (::stat(k.path.c_str(), &st) == 0 && keyOf(st) == FollowerTable::keyOf(k.identity)) {
    return;  // still under its name: the scan opens it (if the globs still match it)
  }
  std::string dir = dirName(k.path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    int err = errno;
    if (isFdShortage(err)) {
      noteFdShortage(err, dir);
      waitForFd(k);
    }
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_ino == k.identity.ino) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& name : names) {
    std::string path = joinPath(dir, name);
    sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd && isFdShortage(errno)) {
      noteFdShortage(errno, path);
      waitForFd(k);
      return;
    }
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (keyOf(st) != FollowerTable::keyOf(k.identity)) continue;
    auto same = stillMatches(fd.get(), st, k.identity);
    if (!same.ok() || !*same) continue;
    spdlog::info("input '{}': {} was rotated to {} while stopped; draining it", cfg_.name, k.path,
                 path);
    fd.reset();
    OpenRequest req;
    req.path = path;
    req.state = Follower::State::kRotated;
    openFollower(req, now);
    return;
  }
}

void InputTailer::Impl::checkLive(Follower& f, uint64_t now) {
  if (f.suspended()) {
    checkSuspended(f, now);
    return;
  }
  refreshAndApply(f, now);
  if (f.state() != Follower::State::kLive) return;
  struct stat st;
  if (::stat(f.path().c_str(), &st) == 0) {
    if (keyOf(st) == FollowerTable::keyOf(f.identity())) return;
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return;  // cannot tell (EACCES on a directory...): keep it live
  }
  f.markRotated(now);
  table_.leftLive(f);
  ++stats_.rotations;
  spdlog::info("input '{}': {} rotated ({}); reading the old file to its end", cfg_.name, f.path(),
               f.identity().toString());
}

void InputTailer::Impl::apply(Follower& f, const Follower::Change& c) {
  if (f.hasPartialLine()) partial_.insert(f.id());
  if (c.error) {
    spdlog::debug("input '{}': refreshing {}: {}", cfg_.name, f.path(), c.error.toString());
    return;
  }
  stats_.long_line_splits += c.long_line_splits;
  if (c.deleted) {
    ++stats_.deletions;
    table_.leftLive(f);
    spdlog::info("input '{}': {} deleted; draining it from the open fd", cfg_.name, f.path());
  }
  if (c.truncated) {
    ++stats_.truncations;
    spdlog::info("input '{}': {} truncated (generation {}); restarting at offset 0", cfg_.name,
                 f.path(), f.generation());
    uint64_t id = f.id();
    observer_.fileTruncated(f);
    if (table_.byId(id) != nullptr && f.completeEnd() > 0) observer_.fileGrew(f);
  } else if (c.grew) {
    observer_.fileGrew(f);
  }
}

void InputTailer::Impl::refreshNonLive(uint64_t now) {
  for (uint64_t id : table_.notLiveIds()) {
    Follower* f = table_.byId(id);
    if (f != nullptr && f->state() != Follower::State::kLive) refreshAndApply(*f, now);
  }
}

void InputTailer::Impl::noteOpenError(const std::string& path, int err) {
  auto it = open_errors_.find(path);
  if (it != open_errors_.end() && it->second == err) return;
  open_errors_[path] = err;
  ++stats_.open_errors;
  spdlog::warn("input '{}': cannot open {}: {}; retrying at the next change or rescan", cfg_.name,
               path, std::strerror(err));
}

void InputTailer::Impl::noteSkippedLink(const std::string& path, int err) {
  auto it = open_errors_.find(path);
  if (it != open_errors_.end() && it->second == err) return;
  open_errors_[path] = err;
  ++stats_.skipped_symlinks;
  if (err == ELOOP) {
    spdlog::warn("input '{}': skipping {}: a symlink loop ({}); it is not followed", cfg_.name,
                 path, std::strerror(err));
  } else {
    spdlog::info(
        "input '{}': skipping {}: a dangling symlink (its target does not exist); it is "
        "followed once the target appears",
        cfg_.name, path);
  }
}

void InputTailer::Impl::onTick() {
  if (closing_) return;
  Entry entry(*this);
  uint64_t t = now();
  auto partial_ms = static_cast<uint64_t>(cfg_.partial_line_timeout.count());
  // Only the followers with something to time out: those draining after rotation or deletion,
  // and those holding an unterminated line. An idle live file costs nothing here.
  for (uint64_t id : table_.notLiveIds()) {
    if (Follower* f = table_.byId(id)) {
      refreshAndApply(*f, t);
      deferred_.insert(id);  // closing is checked once this tick unwinds
    }
  }
  std::vector<uint64_t> partial(partial_.begin(), partial_.end());
  for (uint64_t id : partial) {
    Follower* f = table_.byId(id);
    if (f == nullptr || !f->hasPartialLine()) {
      partial_.erase(id);
      continue;
    }
    if (f->state() != Follower::State::kLive) continue;  // refreshed above
    if (t - f->lastChangeMs() < partial_ms) continue;
    refreshAndApply(*f, t);  // what looks idle may have grown without an event yet
    if (table_.byId(id) != nullptr && f->hasPartialLine() && t - f->lastChangeMs() >= partial_ms &&
        f->flushPartialLine()) {
      ++stats_.partial_line_flushes;
      observer_.fileGrew(*f);
    }
  }
}

void InputTailer::Impl::checkClose(uint64_t id, uint64_t now) {
  Follower* f = table_.byId(id);
  if (f == nullptr || f->state() == Follower::State::kLive) return;
  if (f->suspended()) {
    // Rotated while suspended and found with nothing new, or gone: nothing is left to read.
    if (waiting_resume_ids_.count(id) == 0) closeFollower(id, false, now);
    return;
  }
  uint64_t idle_since = std::max(f->lastChangeMs(), f->leftLiveMs());
  bool idle = now - idle_since >= static_cast<uint64_t>(cfg_.rotate_wait.count());
  if (idle && f->flushPartialLine()) {
    // Nobody writes this file any more: its last line will never get a newline.
    ++stats_.partial_line_flushes;
    observer_.fileGrew(*f);
    if (table_.byId(id) == nullptr) return;
  }
  if (idle && observer_.fileDrained(*f)) {
    closeFollower(id, false, now);
    return;
  }
  // A renamed file pins no extra disk (it is still there under its new name), so releasing it
  // early would only lose lines: the byte limit applies to deleted files, whose space our fd
  // holds; the age limit to both.
  const auto& ret = cfg_.rotated_retention;
  bool too_big = f->state() == Follower::State::kDeleted && f->size() > ret.max_bytes;
  if (too_big || now - f->leftLiveMs() >= static_cast<uint64_t>(ret.max_age.count())) {
    closeFollower(id, true, now);
  }
}

void InputTailer::Impl::closeFollower(uint64_t id, bool retention, uint64_t now) {
  Follower* f = table_.byId(id);
  if (f == nullptr) return;
  if (retention) {
    ++stats_.retention_releases;
    bool by_size =
        f->state() == Follower::State::kDeleted && f->size() > cfg_.rotated_retention.max_bytes;
    spdlog::warn(
        "input '{}': releasing {} {} ({} bytes, {} ms since it left its name) before "
        "every sink drained it: rotated_retention.{} exceeded",
        cfg_.name, stateName(f->state()), f->path(), f->size(), now - f->leftLiveMs(),
        by_size ? "max_bytes" : "max_age");
  } else {
    spdlog::info("input '{}': closing {} {} ({} bytes shipped)", cfg_.name, stateName(f->state()),
                 f->path(), f->size());
  }
  observer_.fileClosing(*f);
  std::unique_ptr<Follower> owned = table_.remove(id);
  if (!owned) return;
  if (owned->suspended()) {
    if (suspended_count_ > 0) --suspended_count_;
    // Its inode may still be on disk under a name the globs match: never ship it twice. The
    // next full scan forgets it if it is nowhere.
    table_.rememberFinished(owned->identity(), owned->size());
  } else {
    struct stat st;
    if (::fstat(owned->fd(), &st) == 0 && st.st_nlink > 0) {
      table_.rememberFinished(owned->identity(), owned->size());
    }
    releaseFd();
  }
  stats_.files_followed = table_.size();
}

// ---- InputTailer: forwards to Impl. ----

InputTailer::InputTailer(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer)
    : InputTailer(loop, cfg, observer, FdBudget::process()) {}

InputTailer::InputTailer(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer,
                         FdBudget& budget)
    : impl_(std::make_unique<Impl>(loop, cfg, observer, budget)) {}

InputTailer::~InputTailer() = default;

sys::Error InputTailer::start(bool at_startup, const std::vector<KnownFile>& known) {
  return impl_->start(at_startup, known);
}

void InputTailer::stop() {
  impl_->stop();
}

void InputTailer::close(std::function<void()> on_closed) {
  impl_->close(std::move(on_closed));
}

void InputTailer::poke(Follower& f) {
  impl_->poke(f);
}

const config::InputConfig& InputTailer::config() const {
  return impl_->config();
}

const InputStats& InputTailer::stats() const {
  return impl_->stats();
}

}  // namespace logsplice::inputs
