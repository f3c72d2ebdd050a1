#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "inputs/follower.h"

namespace logsplice::inputs {

// The followers of one input and the indexes the tailer looks them up by: id, inode (one
// follower per (dev, ino), whatever names reach it), the configured path of live followers, and
// the resolved target of symlinked ones. Also remembers finished files (closed after rotation
// while still on disk) so a rescan that meets one under a matching name does not ship it
// again. Owns the followers. Loop thread only.
class FollowerTable {
 public:
  using InodeKey = std::pair<uint64_t, uint64_t>;  // (dev, ino)
  struct Finished {
    FileIdentity identity;
    uint64_t size = 0;  // everything below was shipped (or released)
  };

  // `real_path` differs from f->path() when the path is a symlink; then events for the target
  // find the follower too.
  Follower& add(std::unique_ptr<Follower> f, const std::string& real_path);
  std::unique_ptr<Follower> remove(uint64_t id);
  // f (in the table) went from `from` to f.state(): when it left its name (rotated, deleted),
  // its path may now name another file and it is among the not-live ones.
  void stateChanged(const Follower& f, Follower::State from);
  // Followers in state `s` now.
  size_t count(Follower::State s) const { return by_state_[static_cast<size_t>(s)]; }
  // Followers whose fd is closed (suspended, live or rotated).
  size_t suspendedCount() const {
    return count(Follower::State::kSuspended) + count(Follower::State::kSuspendedRotated);
  }

  Follower* byId(uint64_t id) const;
  Follower* byInode(const InodeKey& key) const;
  Follower* liveAt(const std::string& path) const;
  std::vector<uint64_t> byRealPath(const std::string& path) const;
  // The resolved target of a symlinked follower's path; its own path otherwise.
  std::string realPathOf(const Follower& f) const;
  // Ascending (creation order): rescans walk the followers in a stable order.
  std::vector<uint64_t> ids() const;
  // The followers no longer live (rotated or deleted, being drained): the few that timers
  // refresh, without walking every follower.
  std::vector<uint64_t> notLiveIds() const { return {not_live_.begin(), not_live_.end()}; }
  size_t size() const { return followers_.size(); }
  // The followers in state kLive (fd open, name current): the only candidates for suspension,
  // so the open-file budget looks at at most its own size, not at every follower.
  const std::set<uint64_t>& openLiveIds() const { return open_live_; }

  void rememberFinished(const FileIdentity& identity, uint64_t size);
  const Finished* finished(const InodeKey& key) const;
  size_t finishedCount() const { return finished_.size(); }
  void forgetFinished(const InodeKey& key) { finished_.erase(key); }
  // Drops finished files whose inode was not seen by the last full scan.
  void pruneFinished(const std::set<InodeKey>& seen);

  static InodeKey keyOf(const FileIdentity& id) { return {id.dev, id.ino}; }

 private:
  static constexpr size_t kMaxFinished = 4096;
  void leftLive(const Follower& f);
  void setLive(const Follower& f);

  // Hashed: every inotify event looks its follower up, and with 10,000 followers a tree walk
  // (14 dependent cache misses) cost 7% of the agent's CPU with 100 of them growing.
  std::unordered_map<uint64_t, std::unique_ptr<Follower>> followers_;
  struct InodeHash {
    size_t operator()(const InodeKey& k) const {
      return std::hash<uint64_t>{}(k.first * 0x9E3779B97F4A7C15ULL ^ k.second);
    }
  };
  std::unordered_map<InodeKey, uint64_t, InodeHash> by_inode_;
  // Hash of the path -> the live follower there (owned by followers_; an entry leaves before its
  // follower does). The path itself is the follower's own (a follower's path never changes):
  // one copy less per file counts with 100,000 files.
  std::unordered_multimap<size_t, Follower*> live_by_path_;
  static size_t pathHash(const std::string& path) { return std::hash<std::string>{}(path); }
  std::set<uint64_t> not_live_;
  std::set<uint64_t> open_live_;
  std::multimap<std::string, uint64_t> by_real_path_;
  std::map<InodeKey, Finished> finished_;
  std::array<size_t, static_cast<size_t>(Follower::State::kClosed) + 1> by_state_{};
};

}  // namespace logsplice::inputs
