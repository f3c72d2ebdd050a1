// InputTailer: its lifecycle, the tick, the deferred close checks and closing of followers, and
// its side of the open-file budget (suspending idle followers, the retry of waiting files).
// Routing discovery events to followers is in tailer_routing.cc. See input_tailer.h.

#include "inputs/input_tailer.h"

#include <sys/stat.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "inputs/input_tailer_impl.h"

namespace logsplice::inputs {

InputTailer::Impl::Impl(uv_loop_t* loop, const config::InputConfig& cfg, FileObserver& observer,
                        FdBudget& budget)
    : loop_(loop),
      cfg_(cfg),
      observer_(observer),
      budget_(budget),
      discovery_(loop, cfg_, *this),
      waiting_(loop, cfg_.name, budget),
      dir_errors_(cfg_.name) {
  budget_.attach(this);
}

InputTailer::Impl::~Impl() {
  // Followers still open (close() was not called) give their leases back as the table goes.
  budget_.detach(this);
}

uint64_t InputTailer::Impl::tickMs() const {
  auto shortest = std::min(cfg_.partial_line_timeout, cfg_.rotate_wait).count() / 4;
  return static_cast<uint64_t>(std::clamp<int64_t>(shortest, 10, 250));
}

sys::Error InputTailer::Impl::start(bool at_startup, const std::vector<KnownFile>& known) {
  if (started_ || closing_) return sys::Error::invalidArgument("input tailer already started");
  if (sys::Error err = discovery_.init()) return err;
  int rc = tick_.init(uv_timer_init, loop_, this);
  if (rc == 0) rc = rescan_.init(uv_timer_init, loop_, this);
  if (rc == 0) rc = recheck_.init(uv_timer_init, loop_, this);
  if (rc == 0) rc = waiting_.init([this] { retryWaiting(); });
  if (rc != 0) return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
  started_ = true;
  Entry entry(*this);
  uint64_t t = now();
  for (const auto& k : known) openKnown(k, t);
  startup_scan_ = at_startup;
  uint64_t scan_started = uv_hrtime();
  rescan(t);
  uint64_t scan_ms = (uv_hrtime() - scan_started) / 1000000;
  startup_scan_ = false;
  stats_.rescans = 0;  // the initial scan is not a re-scan
  discovery_.start();
  uint64_t tick = tickMs();
  uv_timer_start(
      tick_.get(), [](uv_timer_t* h) { static_cast<Impl*>(h->data)->onTick(); }, tick, tick);
  rescan_every_ms_ = rescanIntervalMs();
  armRescan(rescan_every_ms_);
  paceRescans(scan_ms);  // the first scan (opening every file) says how many files there are
  return sys::Error::ok();
}

uint64_t InputTailer::Impl::rescanIntervalMs() const {
  return static_cast<uint64_t>(std::max<int64_t>(cfg_.rescan_interval.count(), 10));
}

void InputTailer::Impl::armRescan(uint64_t every) {
  uv_timer_start(
      rescan_.get(), [](uv_timer_t* h) { static_cast<Impl*>(h->data)->rescanNeeded(false); }, every,
      every);
}

void InputTailer::Impl::paceRescans(uint64_t took_ms) {
  // The periodic rescan is a safety net behind inotify; with 100,000 files one costs a few
  // hundred ms. It may take at most 1/kRescanCostShare of the loop: a slow rescan pushes the
  // next one out (never below rescan_interval, never beyond kRescanMaxPaceMs), a cheap one
  // brings the configured pace back.
  uint64_t every = rescanIntervalMs();
  if (took_ms >= kRescanCheapMs) {
    every = std::clamp(took_ms * kRescanCostShare, every, std::max(every, kRescanMaxPaceMs));
  }
  bool running = rescan_ && uv_is_active(reinterpret_cast<uv_handle_t*>(rescan_.get()));
  if (every != rescan_every_ms_ && running && !closing_) {
    if (every > rescanIntervalMs()) {
      spdlog::info("input '{}': a rescan took {} ms; the next ones every {} s", cfg_.name, took_ms,
                   every / 1000);
    }
    rescan_every_ms_ = every;
    armRescan(every);
  }
}

void InputTailer::Impl::stop() {
  discovery_.stop();
  if (tick_) uv_timer_stop(tick_.get());
  if (rescan_) uv_timer_stop(rescan_.get());
  if (recheck_) uv_timer_stop(recheck_.get());
  waiting_.stop();
}

void InputTailer::Impl::close(std::function<void()> on_closed) {
  if (closing_) return;
  closing_ = true;
  stop();
  deferred_.clear();
  rechecks_.clear();
  partial_.clear();
  waiting_.clear();
  for (uint64_t id : table_.ids()) {
    observer_.fileClosing(*table_.byId(id));
    std::unique_ptr<Follower> owned = table_.remove(id);
    if (!owned) continue;
    owned->setOwner(nullptr);
    owned->markClosed();  // its lease goes back to the budget
  }
  budget_.detach(this);
  syncGauges();
  auto pending = std::make_shared<int>(5);
  auto done = [pending, cb = std::move(on_closed)]() {
    if (--*pending == 0 && cb) cb();
  };
  tick_.close(done);
  rescan_.close(done);
  recheck_.close(done);
  waiting_.close(done);
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

void InputTailer::Impl::recheckSoon(Follower& f) {
  if (closing_ || !recheck_) return;
  // Never now: the caller (a sink's callback, via the router) may still be using f.
  rechecks_.insert(f.id());
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(recheck_.get()))) {
    uv_timer_start(
        recheck_.get(), [](uv_timer_t* h) { static_cast<Impl*>(h->data)->runRechecks(); }, 0, 0);
  }
}

void InputTailer::Impl::runRechecks() {
  if (closing_) return;
  Entry entry(*this);
  // Looked up by id when they run (in checkClose): one closed meanwhile is skipped.
  deferred_.insert(rechecks_.begin(), rechecks_.end());
  rechecks_.clear();
}

void InputTailer::Impl::followerStateChanged(Follower& f, Follower::State from) {
  table_.stateChanged(f, from);
}

void InputTailer::Impl::runDeferred() {
  while (!deferred_.empty() && !closing_) {
    uint64_t id = *deferred_.begin();
    deferred_.erase(deferred_.begin());
    checkClose(id, now());
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
    if (f->state() != Follower::State::kLive) continue;  // refreshed above, or fd closed
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
  if (f == nullptr || f->live()) return;
  if (f->suspended()) {
    // Rotated while suspended and found with nothing new, or gone: nothing is left to read.
    if (!waiting_.waitingResume(id)) closeFollower(id, false, now);
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
  const char* state = Follower::stateName(f->state());
  if (retention) {
    ++stats_.retention_releases;
    bool by_size =
        f->state() == Follower::State::kDeleted && f->size() > cfg_.rotated_retention.max_bytes;
    spdlog::warn(
        "input '{}': releasing {} {} ({} bytes, {} ms since it left its name) before "
        "every sink drained it: rotated_retention.{} exceeded",
        cfg_.name, state, f->path(), f->size(), now - f->leftLiveMs(),
        by_size ? "max_bytes" : "max_age");
  } else {
    spdlog::info("input '{}': closing {} {} ({} bytes shipped)", cfg_.name, state, f->path(),
                 f->size());
  }
  observer_.fileClosing(*f);
  std::unique_ptr<Follower> owned = table_.remove(id);
  if (!owned) return;
  if (owned->suspended()) {
    // Its inode may still be on disk under a name the globs match: never ship it twice. The
    // next full scan forgets it if it is nowhere.
    table_.rememberFinished(owned->identity(), owned->size());
  } else {
    struct stat st;
    if (::fstat(owned->fd(), &st) == 0 && st.st_nlink > 0) {
      table_.rememberFinished(owned->identity(), owned->size());
    }
  }
  owned->setOwner(nullptr);
  owned->markClosed();  // its lease (if any) goes back to the budget
  stats_.files_followed = table_.size();
}

// ---- The open-file budget. ----

FdLease InputTailer::Impl::acquireFd() {
  // First come, first served: while files wait, newcomers queue behind them.
  if (waiting_.mustQueue()) return {};
  if (FdLease lease = budget_.lease(&open_fds_)) return lease;
  // Spent: close a few idle files at once (least recently active first, any input), so that
  // each open beyond the budget does not pay for a full pass over the followers.
  uint64_t batch = std::clamp<uint64_t>(budget_.limit() / 64, 1, 64);
  if (budget_.reclaim(batch) > 0) return budget_.lease(&open_fds_);
  return {};
}

bool InputTailer::Impl::suspendable(const Follower& f) const {
  return f.state() == Follower::State::kLive && !f.hasPartialLine() && observer_.fileDrained(f);
}

void InputTailer::Impl::collectIdle(std::vector<Idle>& out) {
  if (closing_) return;
  for (uint64_t id : table_.openLiveIds()) {
    const Follower* f = table_.byId(id);
    if (f != nullptr && suspendable(*f)) out.push_back({f->lastChangeMs(), this, id});
  }
}

bool InputTailer::Impl::suspendIdle(uint64_t follower_id) {
  Follower* f = table_.byId(follower_id);
  if (closing_ || f == nullptr || !suspendable(*f)) return false;
  f->suspend();  // closes the fd; its lease goes back to the budget
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

void InputTailer::Impl::noteFdShortage(int err, const std::string& what) {
  ++stats_.fd_exhaustions;
  waiting_.noteShortage(err, what);
}

void InputTailer::Impl::retryWaiting() {
  if (closing_) return;
  Entry entry(*this);
  uint64_t t = now();
  FdWaitQueue::Handlers h;
  h.rescan = [&] { rescan(t); };
  h.resume = [&](uint64_t id) {
    Follower* f = table_.byId(id);
    if (f != nullptr && f->suspended()) reopen(*f, t);
  };
  h.known = [&](const KnownFile& k) { openKnown(k, t); };
  h.open = [&](OpenRequest req) {
    if (req.rotated) {
      openFollower(req, t);
    } else {
      considerRequest(std::move(req), t, nullptr);  // the name may have changed meanwhile
    }
  };
  waiting_.retry(h);
}

void InputTailer::Impl::syncGauges() {
  stats_.files_followed = table_.size();
  stats_.files_open = open_fds_;
  stats_.files_suspended = table_.suspendedCount();
  stats_.files_waiting_for_fd = waiting_.size();
  stats_.unreadable_dirs = dir_errors_.size();
  stats_.dir_errors_total = dir_errors_.errorsTotal();
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

std::vector<UnreadableDir> InputTailer::unreadableDirs() const {
  return impl_->dirErrors().list();
}

}  // namespace logsplice::inputs
