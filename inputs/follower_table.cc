#include "inputs/follower_table.h"

#include <algorithm>

namespace logsplice::inputs {

Follower& FollowerTable::add(std::unique_ptr<Follower> f, const std::string& real_path) {
  Follower& ref = *f;
  by_inode_[keyOf(ref.identity())] = ref.id();
  ++by_state_[static_cast<size_t>(ref.state())];
  if (ref.state() == Follower::State::kLive) open_live_.insert(ref.id());
  if (ref.live()) {
    setLive(ref);
  } else {
    not_live_.insert(ref.id());
  }
  if (real_path != ref.path()) by_real_path_.emplace(real_path, ref.id());
  finished_.erase(keyOf(ref.identity()));
  followers_.emplace(ref.id(), std::move(f));
  return ref;
}

std::unique_ptr<Follower> FollowerTable::remove(uint64_t id) {
  auto it = followers_.find(id);
  if (it == followers_.end()) return nullptr;
  std::unique_ptr<Follower> f = std::move(it->second);
  followers_.erase(it);
  --by_state_[static_cast<size_t>(f->state())];
  open_live_.erase(id);
  auto in = by_inode_.find(keyOf(f->identity()));
  if (in != by_inode_.end() && in->second == id) by_inode_.erase(in);
  leftLive(*f);
  not_live_.erase(id);
  for (auto rp = by_real_path_.begin(); rp != by_real_path_.end();) {
    rp = rp->second == id ? by_real_path_.erase(rp) : std::next(rp);
  }
  return f;
}

void FollowerTable::stateChanged(const Follower& f, Follower::State from) {
  if (followers_.count(f.id()) == 0) return;
  --by_state_[static_cast<size_t>(from)];
  ++by_state_[static_cast<size_t>(f.state())];
  if (f.state() == Follower::State::kLive) {
    open_live_.insert(f.id());
  } else {
    open_live_.erase(f.id());
  }
  if (!f.live()) leftLive(f);
}

void FollowerTable::leftLive(const Follower& f) {
  auto [lo, hi] = live_by_path_.equal_range(pathHash(f.path()));
  for (auto it = lo; it != hi; ++it) {
    if (it->second == &f) {
      live_by_path_.erase(it);
      break;
    }
  }
  if (followers_.count(f.id())) not_live_.insert(f.id());
}

Follower* FollowerTable::byId(uint64_t id) const {
  auto it = followers_.find(id);
  return it == followers_.end() ? nullptr : it->second.get();
}

Follower* FollowerTable::byInode(const InodeKey& key) const {
  auto it = by_inode_.find(key);
  return it == by_inode_.end() ? nullptr : byId(it->second);
}

Follower* FollowerTable::liveAt(const std::string& path) const {
  auto [lo, hi] = live_by_path_.equal_range(pathHash(path));
  for (auto it = lo; it != hi; ++it) {
    if (it->second->path() == path) return it->second;
  }
  return nullptr;
}

void FollowerTable::setLive(const Follower& f) {
  // A new live follower under a path takes it over from the one there (as a map assignment).
  auto [lo, hi] = live_by_path_.equal_range(pathHash(f.path()));
  Follower* self = const_cast<Follower*>(&f);  // the table owns it; stored for lookups
  for (auto it = lo; it != hi; ++it) {
    if (it->second->path() == f.path()) {
      it->second = self;
      return;
    }
  }
  live_by_path_.emplace(pathHash(f.path()), self);
}

std::vector<uint64_t> FollowerTable::byRealPath(const std::string& path) const {
  std::vector<uint64_t> out;
  auto [lo, hi] = by_real_path_.equal_range(path);
  for (auto it = lo; it != hi; ++it) out.push_back(it->second);
  return out;
}

std::string FollowerTable::realPathOf(const Follower& f) const {
  for (const auto& [path, id] : by_real_path_) {
    if (id == f.id()) return path;
  }
  return f.path();
}

std::vector<uint64_t> FollowerTable::ids() const {
  std::vector<uint64_t> out;
  out.reserve(followers_.size());
  for (const auto& [id, f] : followers_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

void FollowerTable::rememberFinished(const FileIdentity& identity, uint64_t size) {
  if (finished_.size() >= kMaxFinished) finished_.erase(finished_.begin());
  finished_[keyOf(identity)] = Finished{identity, size};
}

const FollowerTable::Finished* FollowerTable::finished(const InodeKey& key) const {
  auto it = finished_.find(key);
  return it == finished_.end() ? nullptr : &it->second;
}

void FollowerTable::pruneFinished(const std::set<InodeKey>& seen) {
  for (auto it = finished_.begin(); it != finished_.end();) {
    it = seen.count(it->first) ? std::next(it) : finished_.erase(it);
  }
}

}  // namespace logsplice::inputs
