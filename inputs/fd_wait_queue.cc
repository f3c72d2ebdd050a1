#include "inputs/fd_wait_queue.h"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

namespace logsplice::inputs {
namespace {

constexpr uint64_t kRetryMinMs = 20;
constexpr uint64_t kRetryMaxMs = 1000;

}  // namespace

FdWaitQueue::FdWaitQueue(uv_loop_t* loop, const std::string& input_name, FdBudget& budget)
    : loop_(loop), input_name_(input_name), budget_(budget) {}

int FdWaitQueue::init(std::function<void()> on_retry) {
  on_retry_ = std::move(on_retry);
  return timer_.init(uv_timer_init, loop_, this);
}

void FdWaitQueue::stop() {
  if (timer_) uv_timer_stop(timer_.get());
}

void FdWaitQueue::clear() {
  opens_.clear();
  open_paths_.clear();
  resumes_.clear();
  resume_ids_.clear();
  known_.clear();
  rescan_wanted_ = false;
}

void FdWaitQueue::close(std::function<void()> on_closed) {
  closing_ = true;
  clear();
  timer_.close(std::move(on_closed));
}

void FdWaitQueue::push(const OpenRequest& req) {
  if (closing_) return;
  if (open_paths_.insert(req.path).second) opens_.push_back(req);
  noteWaiting(req.path);
}

void FdWaitQueue::pushResume(uint64_t follower_id, const std::string& what) {
  if (closing_) return;
  if (resume_ids_.insert(follower_id).second) resumes_.push_back(follower_id);
  noteWaiting(what);
}

void FdWaitQueue::push(const KnownFile& k) {
  if (closing_) return;
  for (const auto& w : known_) {
    if (w.identity.sameInode(k.identity)) return;
  }
  known_.push_back(k);
  noteWaiting(k.path);
}

void FdWaitQueue::wantRescan() {
  if (closing_) return;
  rescan_wanted_ = true;
  arm();
}

void FdWaitQueue::noteWaiting(const std::string& what) {
  arm();
  if (warned_waiting_) return;
  warned_waiting_ = true;
  spdlog::warn(
      "input '{}': no file descriptor for {}: the open-file budget is spent ({} of {} in use) "
      "and no followed file is idle and delivered; files wait and are opened as soon as one "
      "frees up",
      input_name_, what, budget_.inUse(), budget_.limit());
}

void FdWaitQueue::noteShortage(int err, const std::string& what) {
  budget_.exhausted(err);
  if (warned_shortage_) return;
  warned_shortage_ = true;
  spdlog::warn("input '{}': {} for {}: waiting for a descriptor (retried, nothing is dropped)",
               input_name_, std::strerror(err), what);
}

void FdWaitQueue::arm() {
  if (closing_ || !timer_ || uv_is_active(reinterpret_cast<uv_handle_t*>(timer_.get()))) return;
  if (retry_ms_ == 0) retry_ms_ = kRetryMinMs;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* h) {
        auto* self = static_cast<FdWaitQueue*>(h->data);
        if (self->on_retry_) self->on_retry_();
      },
      retry_ms_, 0);
}

void FdWaitQueue::retry(const Handlers& h) {
  if (closing_) return;
  size_t before = size();
  if (before > budget_.available()) budget_.reclaim(before - budget_.available());
  draining_ = true;
  if (rescan_wanted_) {
    rescan_wanted_ = false;
    h.rescan();  // asks again if it is still short
  }
  for (size_t n = resumes_.size(); n > 0 && budget_.available() > 0 && !closing_; --n) {
    uint64_t id = resumes_.front();
    resumes_.pop_front();
    resume_ids_.erase(id);
    h.resume(id);
  }
  for (size_t n = known_.size(); n > 0 && budget_.available() > 0 && !closing_; --n) {
    KnownFile k = known_.front();
    known_.erase(known_.begin());
    h.known(k);
  }
  for (size_t n = opens_.size(); n > 0 && budget_.available() > 0 && !closing_; --n) {
    OpenRequest req = std::move(opens_.front());
    opens_.pop_front();
    open_paths_.erase(req.path);
    h.open(std::move(req));
  }
  draining_ = false;
  size_t after = size();
  if (empty()) {
    retry_ms_ = 0;
    if (warned_waiting_ || warned_shortage_) {
      spdlog::info("input '{}': every file that waited for a descriptor is open now", input_name_);
    }
    warned_waiting_ = false;
    warned_shortage_ = false;
    return;
  }
  // Nothing freed up (every file lags, a collector is down): look less often, up to 1 s.
  retry_ms_ = after < before ? kRetryMinMs : std::min(retry_ms_ * 2, kRetryMaxMs);
  arm();
}

}  // namespace logsplice::inputs
