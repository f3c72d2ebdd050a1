// The transitions of a Follower that look at the filesystem: is its path still its file, and
// reopening it after a suspension (by path while live, by inode once it left its name).

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "inputs/follower.h"
#include "inputs/follow_open.h"
#include "inputs/path_glob.h"
#include "sys/assert.h"

namespace logsplice::inputs {
namespace {

bool isFdShortage(int err) {
  return err == EMFILE || err == ENFILE;
}

bool sameInode(const struct stat& st, const FileIdentity& id) {
  return static_cast<uint64_t>(st.st_dev) == id.dev && static_cast<uint64_t>(st.st_ino) == id.ino;
}

}  // namespace

Follower::NameCheck Follower::checkName() const {
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0) {
    if (!sameInode(st, identity_)) return NameCheck::kGone;
    return changedSince(st) ? NameCheck::kThisChanged : NameCheck::kThisFile;
  }
  if (errno == ENOENT || errno == ENOTDIR) return NameCheck::kGone;
  return NameCheck::kUnknown;
}

Follower::Reopen Follower::reopen(const std::string& dir, const std::function<FdLease()>& lease) {
  LS_ASSERT(suspended(), "reopen() of a follower that holds its fd");
  Reopen r;
  if (state_ == State::kSuspended) {
    r.path = path_;
    FdLease unit = lease();
    if (!unit) {
      r.kind = Reopen::kNoFd;
      return r;
    }
    sys::UniqueFd fd(openFollowed(path_.c_str()));
    if (!fd) {
      r.err = errno;
      r.kind = isFdShortage(r.err)                     ? Reopen::kNoFd
               : (r.err == ENOENT || r.err == ENOTDIR) ? Reopen::kGone
                                                       : Reopen::kError;
      return r;
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
      r.err = errno;
      r.kind = Reopen::kError;
      return r;
    }
    if (!sameInode(st, identity_)) {
      r.kind = Reopen::kGone;  // replaced between the stat and the open
      return r;
    }
    resume(std::move(fd), std::move(unit));
    r.kind = Reopen::kResumed;
    return r;
  }

  // kSuspendedRotated: a rename in place (app.log -> app.log.1) keeps the inode in the same
  // directory (that of the symlink's target for a symlinked path).
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_ino == identity_.ino) names.emplace_back(e->d_name);
    }
    ::closedir(d);
  } else if (isFdShortage(errno)) {
    r.err = errno;
    r.path = dir;
    r.kind = Reopen::kNoFd;
    return r;
  }
  for (const auto& name : names) {
    std::string path = joinPath(dir, name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !sameInode(st, identity_) || !S_ISREG(st.st_mode)) {
      continue;
    }
    r.path = path;
    // Size, not timestamps: a rename changes the ctime.
    if (static_cast<uint64_t>(std::max<off_t>(st.st_size, 0)) == size_) {
      // Nothing was appended between the suspension and the rotation: every byte is shipped.
      r.kind = Reopen::kNothingNew;
      return r;
    }
    FdLease unit = lease();
    if (!unit) {
      r.kind = Reopen::kNoFd;
      return r;
    }
    sys::UniqueFd fd(openFollowed(path.c_str()));
    if (!fd) {
      int err = errno;
      if (isFdShortage(err)) {
        r.err = err;
        r.kind = Reopen::kNoFd;
        return r;
      }
      continue;
    }
    if (::fstat(fd.get(), &st) != 0 || !sameInode(st, identity_)) continue;
    auto same = stillMatches(fd.get(), st, identity_);
    if (!same.ok() || !*same) continue;  // the inode number was reused by another file
    resume(std::move(fd), std::move(unit));
    r.kind = Reopen::kResumed;
    return r;
  }
  // Deleted, or moved to another directory: it was delivered up to its size when suspended,
  // and bytes appended after that cannot be read any more (an open fd would have kept them).
  r.path = dir;
  r.kind = Reopen::kMissing;
  return r;
}

}  // namespace logsplice::inputs
