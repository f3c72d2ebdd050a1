#include "inputs/inotify_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace logsplice::inputs {
namespace {

constexpr size_t kReadBytes = 64 * 1024;

}  // namespace

sys::Result<std::unique_ptr<InotifyWatcher>> InotifyWatcher::create(uv_loop_t* loop,
                                                                    WatchHandler& handler,
                                                                    uint64_t batch_delay_ms) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return sys::Error::fromErrno(errno, "inotify_init1");
  std::unique_ptr<InotifyWatcher> w(new InotifyWatcher(loop, handler, sys::UniqueFd(fd)));
  int rc = w->poll_.init([&](uv_poll_t* h) { return uv_poll_init(loop, h, fd); }, w.get());
  if (rc != 0) return sys::Error::io(std::string("uv_poll_init(inotify): ") + uv_strerror(rc));
  w->batch_delay_ms_ = batch_delay_ms;
  if (batch_delay_ms > 0) {
    rc = w->delay_.init([&](uv_timer_t* h) { return uv_timer_init(loop, h); }, w.get());
    if (rc != 0) return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
  }
  return w;
}

InotifyWatcher::InotifyWatcher(uv_loop_t* loop, WatchHandler& handler, sys::UniqueFd fd)
    : loop_(loop), handler_(handler), fd_(std::move(fd)) {}

InotifyWatcher::~InotifyWatcher() = default;  // poll_ closes (stops) before fd_ closes

sys::Error InotifyWatcher::watchDir(const std::string& dir) {
  if (wd_by_dir_.count(dir) != 0) return sys::Error::ok();
  if (!fd_) return sys::Error(sys::ErrorCode::kClosed, "inotify closed");
  int wd = ::inotify_add_watch(fd_.get(), dir.c_str(), kMask);
  if (wd < 0) return sys::Error::fromErrno(errno, "inotify_add_watch " + dir);
  // Two paths to one directory (a symlink) share the wd; the last path wins, which is fine:
  // events are re-derived from stat anyway.
  auto old = dir_by_wd_.find(wd);
  if (old != dir_by_wd_.end()) wd_by_dir_.erase(old->second);
  dir_by_wd_[wd] = dir;
  wd_by_dir_[dir] = wd;
  return sys::Error::ok();
}

void InotifyWatcher::unwatchDir(const std::string& dir) {
  auto it = wd_by_dir_.find(dir);
  if (it == wd_by_dir_.end()) return;
  if (fd_) ::inotify_rm_watch(fd_.get(), it->second);  // EINVAL if already gone: harmless
  dir_by_wd_.erase(it->second);
  wd_by_dir_.erase(it);
}

void InotifyWatcher::forget(int wd) {
  auto it = dir_by_wd_.find(wd);
  if (it == dir_by_wd_.end()) return;
  wd_by_dir_.erase(it->second);
  dir_by_wd_.erase(it);
}

void InotifyWatcher::start() {
  if (started_ || !poll_) return;
  uv_poll_start(poll_.get(), UV_READABLE, &InotifyWatcher::onPoll);
  started_ = true;
}

void InotifyWatcher::stop() {
  if (!started_ || !poll_) return;
  uv_poll_stop(poll_.get());
  if (delay_) uv_timer_stop(delay_.get());
  started_ = false;
}

void InotifyWatcher::close(std::function<void()> on_closed) {
  started_ = false;
  dir_by_wd_.clear();
  wd_by_dir_.clear();
  // The fd is closed only once the poll handle is closed (hence stopped): it rides along into
  // the close callback, which may run after this watcher is gone.
  auto fd = std::make_shared<sys::UniqueFd>(std::move(fd_));
  if (delay_) delay_.close(nullptr);
  poll_.close([fd, cb = std::move(on_closed)]() {
    fd->reset();
    if (cb) cb();
  });
}

void InotifyWatcher::onPoll(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<InotifyWatcher*>(handle->data);
  if (status < 0) {
    spdlog::warn("inotify poll error: {}", uv_strerror(status));
    return;
  }
  if (self->batch_delay_ms_ == 0) {
    self->drain();
    return;
  }
  // Let the window's events pile up in the kernel's queue (identical consecutive ones merge
  // there) and read them all when the delay ends.
  uint64_t delay = self->spread_ ? self->batch_delay_ms_
                                 : std::min(self->batch_delay_ms_, kSingleFileDelayMs);
  uv_poll_stop(handle);
  uv_timer_start(self->delay_.get(), &InotifyWatcher::onDelay, delay, 0);
}

void InotifyWatcher::onDelay(uv_timer_t* handle) {
  auto* self = static_cast<InotifyWatcher*>(handle->data);
  // Polling resumes before the drain: the handler may close and destroy this watcher.
  if (self->started_) uv_poll_start(self->poll_.get(), UV_READABLE, &InotifyWatcher::onPoll);
  self->drain();
}

void InotifyWatcher::drain() {
  if (!fd_) return;
  alignas(struct inotify_event) char buf[kReadBytes];
  std::vector<WatchHandler::Event> events;
  bool overflow = false;
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) spdlog::warn("inotify read: {}", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(struct inotify_event)) <= n;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        overflow = true;
        continue;
      }
      auto it = dir_by_wd_.find(ev->wd);
      if (it == dir_by_wd_.end()) continue;  // a watch removed meanwhile
      WatchHandler::Event out;
      out.dir = it->second;
      out.is_dir = (ev->mask & IN_ISDIR) != 0;
      out.cookie = ev->cookie;
      if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        // The directory itself went away (or moved: the wd would follow it under a name we no
        // longer know). Drop the watch; the handler rescans.
        out.kind = WatchHandler::Kind::kRemoved;
        out.is_dir = true;
        if (ev->mask & IN_MOVE_SELF) ::inotify_rm_watch(fd_.get(), ev->wd);
        forget(ev->wd);
      } else {
        out.name = ev->len > 0 ? std::string(ev->name) : std::string();
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
          out.kind = WatchHandler::Kind::kCreated;
        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
          out.kind = WatchHandler::Kind::kRemoved;
        } else {
          out.kind = WatchHandler::Kind::kContent;
        }
      }
      events.push_back(std::move(out));
    }
    if (static_cast<size_t>(n) < sizeof buf / 2) break;  // likely drained; saves a read
  }
  spread_ = false;
  for (const auto& ev : events) {
    if (ev.name != events.front().name || ev.dir != events.front().dir) {
      spread_ = true;
      break;
    }
  }
  WatchHandler& handler = handler_;  // the handler may close and destroy this watcher
  if (!events.empty()) handler.changed(events);
  if (overflow) handler.overflowed();
}

}  // namespace logsplice::inputs
