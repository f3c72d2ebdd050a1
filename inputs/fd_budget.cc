#include "inputs/fd_budget.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace logsplice::inputs {

FdBudget::FdBudget(uint64_t limit) : limit_(limit == 0 ? 1 : limit) {}

FdBudget& FdBudget::process() {
  static FdBudget budget;
  return budget;
}

bool FdBudget::tryAcquire() {
  if (in_use_ >= limit_) return false;
  ++in_use_;
  return true;
}

FdLease FdBudget::lease(uint64_t* tally) {
  if (!tryAcquire()) return {};
  return FdLease(*this, tally);
}

void FdBudget::release() {
  if (in_use_ > 0) --in_use_;
}

void FdBudget::exhausted(int err) {
  uint64_t lowered = in_use_ - std::min<uint64_t>(in_use_ / 8, 16);
  lowered = std::max<uint64_t>(lowered, 1);
  if (lowered >= limit_) return;
  spdlog::warn(
      "open-file budget: {} with {} follower fds open; lowering the budget from {} to {} "
      "(idle files are closed and reopened when they grow; nothing is dropped)",
      std::strerror(err), in_use_,
      limit_ == kUnlimited ? std::string("unlimited") : std::to_string(limit_), lowered);
  limit_ = lowered;
}

uint64_t FdBudget::reclaim(uint64_t want) {
  if (want == 0) return 0;
  std::vector<Holder::Idle> idle;
  for (Holder* h : holders_) h->collectIdle(idle);
  size_t n = static_cast<size_t>(std::min<uint64_t>(want, idle.size()));
  auto older = [](const Holder::Idle& a, const Holder::Idle& b) {
    return a.last_active_ms < b.last_active_ms;
  };
  std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(n), idle.end(), older);
  uint64_t freed = 0;
  for (size_t i = 0; i < n; ++i) {
    // Looked up again by id: a holder may have detached or closed the follower meanwhile.
    Holder* h = idle[i].holder;
    if (std::find(holders_.begin(), holders_.end(), h) == holders_.end()) continue;
    if (h->suspendIdle(idle[i].follower_id)) ++freed;
  }
  return freed;
}

void FdBudget::attach(Holder* h) {
  if (std::find(holders_.begin(), holders_.end(), h) == holders_.end()) holders_.push_back(h);
}

void FdBudget::detach(Holder* h) {
  holders_.erase(std::remove(holders_.begin(), holders_.end(), h), holders_.end());
}

void raiseFdLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rlim_t old = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("cannot raise RLIMIT_NOFILE from {} to {}: {}", old, rl.rlim_max,
                 std::strerror(errno));
  }
}

uint64_t effectiveFdBudget(uint64_t max_open_files, uint64_t reserve) {
  uint64_t budget = max_open_files;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    uint64_t soft = static_cast<uint64_t>(rl.rlim_cur);
    budget = std::min(budget, soft > reserve ? soft - reserve : 1);
  }
  return std::max<uint64_t>(budget, 1);
}

uint64_t configureProcessFdBudget(uint64_t max_open_files, uint64_t reserve) {
  raiseFdLimit();
  uint64_t budget = effectiveFdBudget(max_open_files, reserve);
  FdBudget::process().setLimit(budget);
  struct rlimit rl {};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  spdlog::info(
      "open-file budget: {} followed files hold an fd at once (agent.max_open_files {}, "
      "RLIMIT_NOFILE {}, {} kept for sockets, pipes and checkpoints); idle files beyond it are "
      "closed and reopened when they grow",
      budget, max_open_files, static_cast<uint64_t>(rl.rlim_cur), reserve);
  return budget;
}

}  // namespace logsplice::inputs
