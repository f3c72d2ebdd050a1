// InputTailer: routing what discovery reports (events, scans, files known from checkpoints) to
// the followers: opening new ones, checking that live ones still own their name, reopening
// suspended ones. The followers' transitions themselves are Follower's. See input_tailer.h.

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

#include "inputs/follow_open.h"
#include "inputs/input_tailer_impl.h"
#include "inputs/line_end.h"

namespace logsplice::inputs {
namespace {

using InodeKey = FollowerTable::InodeKey;

InodeKey keyOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool isFdShortage(int err) {
  return err == EMFILE || err == ENFILE;
}

}  // namespace

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
  uint64_t started = uv_hrtime();
  rescan(now());
  paceRescans((uv_hrtime() - started) / 1000000);
}

void InputTailer::Impl::rescan(uint64_t now) {
  // With 100,000 files a rescan must cost one stat per file and little else: the inodes seen
  // are gathered only if finished files are remembered, the paths only if open errors are.
  std::set<InodeKey> seen;
  std::set<std::string> seen_paths;
  bool want_seen = table_.finishedCount() > 0;
  bool want_paths = !open_errors_.empty();
  scan_unchanged_.clear();
  in_rescan_ = true;
  dir_errors_.beginScan();
  int fd_err = discovery_.scanStat(
      [&](const std::string& path, const struct stat* st) {
        if (want_paths) seen_paths.insert(path);
        consider(path, true, now, want_seen ? &seen : nullptr, st);
      },
      [&](const std::string& dir, int err) { dir_errors_.note(dir, err); });
  in_rescan_ = false;
  for (uint64_t id : table_.ids()) {
    Follower* f = table_.byId(id);
    if (f == nullptr) continue;
    if (f->live()) {
      // The scan's stat of its path already showed it the same file, unchanged: nothing to do.
      // An idle file costs one stat per rescan, not three.
      if (scan_unchanged_.count(id) == 0) checkLive(*f, now);
    } else {
      refreshAndApply(*f, now);
    }
  }
  scan_unchanged_.clear();
  stats_.polling = discovery_.polling();
  if (fd_err != 0) {
    // Some directory could not be listed: the scan saw only part of the files. Nothing is
    // pruned on its word; it runs again once descriptors are free.
    noteFdShortage(fd_err, "listing the watched directories");
    waiting_.wantRescan();
    return;
  }
  dir_errors_.endScan();
  if (want_seen) table_.pruneFinished(seen);
  // Errors noted by this very scan were seen by it; older ones go if their path did not show.
  if (!want_paths) return;
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
    req.rotated = true;
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
      if (f->live()) return;
    } else {
      checkLive(*f, now);
    }
  }
  for (uint64_t id : table_.byRealPath(path)) {
    if (Follower* f = table_.byId(id)) {
      if (f->live()) {
        checkLive(*f, now);
      } else {
        refreshAndApply(*f, now);
      }
    }
  }
  if (!touch.removed_only && discovery_.isCandidate(path)) consider(path, false, now, nullptr);
}

void InputTailer::Impl::consider(const std::string& path, bool from_scan, uint64_t now,
                                 std::set<InodeKey>* seen, const struct stat* known) {
  OpenRequest req;
  req.path = path;
  req.from_scan = from_scan;
  req.at_startup = startup_scan_;
  considerRequest(std::move(req), now, seen, known);
}

void InputTailer::Impl::considerRequest(OpenRequest req, uint64_t now, std::set<InodeKey>* seen,
                                        const struct stat* known) {
  const std::string& path = req.path;
  struct stat st;
  if (known != nullptr) {
    st = *known;  // the scan's own stat of this path, a moment ago
  } else if (::stat(path.c_str(), &st) != 0) {
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
    if (!f->live()) {
      refreshAndApply(*f, now);
    } else if (in_rescan_ && req.from_scan && f->path() == path && !f->changedSince(st) &&
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
  FdLease lease = acquireFd();
  if (!lease) {
    waiting_.push(req);
    return nullptr;
  }
  int raw = openFollowed(path.c_str());
  if (raw < 0) {
    int err = errno;
    lease.reset();
    if (isFdShortage(err)) {
      // Not "cannot open": the process is out of descriptors. Retried once one frees up.
      noteFdShortage(err, path);
      waiting_.push(req);
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
  auto owned =
      std::make_unique<Follower>(Follower::nextId(), path, cfg_.name, *identity, std::move(fd),
                                 cfg_.copy, cfg_.max_line_bytes, now, std::move(lease));
  if (req.rotated) owned->markRotated(now);
  owned->setOwner(this);
  Follower& f = table_.add(std::move(owned), real_path);
  uint64_t id = f.id();
  if (real_path != path) discovery_.watchExtra(dirName(real_path));
  ++stats_.files_discovered;
  stats_.files_followed = table_.size();

  Follower::Change c = f.refresh(sys_, now);
  if (f.hasPartialLine()) partial_.insert(id);
  if (c.error) spdlog::warn("input '{}': reading {}: {}", cfg_.name, path, c.error.toString());
  stats_.long_line_splits += c.long_line_splits;
  if (c.deleted) ++stats_.deletions;
  uint64_t default_start = 0;
  if (resume > 0) {
    f.breakAt(resume);
    default_start = resume;
  } else if (req.at_startup && cfg_.start_at == config::StartAt::kEnd && !req.rotated) {
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
               f.identity().toString(), Follower::stateName(f.state()), default_start, f.size());
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
      waiting_.push(k);
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
    sys::UniqueFd fd(openFollowed(path.c_str()));
    if (!fd && isFdShortage(errno)) {
      noteFdShortage(errno, path);
      waiting_.push(k);
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
    req.rotated = true;
    openFollower(req, now);
    return;
  }
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
    if (f != nullptr && !f->live()) refreshAndApply(*f, now);
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

void InputTailer::Impl::checkLive(Follower& f, uint64_t now) {
  if (f.suspended()) {
    switch (f.checkName()) {
      case Follower::NameCheck::kThisChanged:
        reopen(f, now);
        return;
      case Follower::NameCheck::kGone:
        markRotated(f, now);
        reopen(f, now);  // looks for it by inode
        return;
      case Follower::NameCheck::kThisFile:
      case Follower::NameCheck::kUnknown:
        return;
    }
    return;
  }
  refreshAndApply(f, now);
  if (f.state() != Follower::State::kLive) return;
  // kUnknown: cannot tell (EACCES on a directory...): keep it live.
  if (f.checkName() == Follower::NameCheck::kGone) markRotated(f, now);
}

void InputTailer::Impl::markRotated(Follower& f, uint64_t now) {
  bool suspended = f.suspended();
  f.markRotated(now);
  ++stats_.rotations;
  if (suspended) {
    spdlog::info(
        "input '{}': {} rotated while its fd was closed (idle, beyond the open-file budget); "
        "looking for {} in its directory",
        cfg_.name, f.path(), f.identity().toString());
  } else {
    spdlog::info("input '{}': {} rotated ({}); reading the old file to its end", cfg_.name,
                 f.path(), f.identity().toString());
  }
}

void InputTailer::Impl::reopen(Follower& f, uint64_t now) {
  bool was_live = f.live();
  std::string dir = dirName(table_.realPathOf(f));
  Follower::Reopen r = f.reopen(dir, [this] { return acquireFd(); });
  switch (r.kind) {
    case Follower::Reopen::kResumed:
      ++stats_.reopens;
      if (was_live) {
        open_errors_.erase(f.path());
        spdlog::debug("input '{}': reopened {} (was {} bytes)", cfg_.name, f.path(), f.size());
      } else {
        spdlog::info(
            "input '{}': found {} as {}; reading what was appended before the rotation, then "
            "closing it",
            cfg_.name, f.path(), r.path);
      }
      // A head that no longer matches the fingerprint is a truncation (copytruncate) here too.
      refreshAndApply(f, now);
      return;
    case Follower::Reopen::kNothingNew:
      spdlog::info("input '{}': {} is now {}, with nothing new; closing it", cfg_.name, f.path(),
                   r.path);
      deferred_.insert(f.id());
      return;
    case Follower::Reopen::kMissing:
      spdlog::info(
          "input '{}': {} ({}) left {} while its fd was closed; closing it (everything up to {} "
          "bytes was delivered)",
          cfg_.name, f.path(), f.identity().toString(), dir, f.size());
      deferred_.insert(f.id());
      return;
    case Follower::Reopen::kGone:
      markRotated(f, now);  // its name went since the stat, or names another file now
      reopen(f, now);
      return;
    case Follower::Reopen::kNoFd:
      if (r.err != 0) noteFdShortage(r.err, r.path);
      waiting_.pushResume(f.id(), f.path());
      return;
    case Follower::Reopen::kError:
      noteOpenError(f.path(), r.err);  // EACCES...: tried again at the next change or rescan
      return;
  }
}

}  // namespace logsplice::inputs
