#include "inputs/poll_watcher.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "inputs/path_glob.h"

namespace logsplice::inputs {

PollWatcher::PollWatcher(uv_loop_t* loop, WatchHandler& handler, std::chrono::milliseconds interval)
    : loop_(loop),
      handler_(handler),
      interval_ms_(static_cast<uint64_t>(std::max<int64_t>(interval.count(), 1))) {
  int rc = timer_.init([loop](uv_timer_t* t) { return uv_timer_init(loop, t); }, this);
  if (rc != 0) spdlog::error("poll watcher: uv_timer_init: {}", uv_strerror(rc));
}

PollWatcher::~PollWatcher() = default;

bool PollWatcher::snapshot(const std::string& dir, Snapshot& out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  out.clear();
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::stat(joinPath(dir, name).c_str(), &st) != 0) continue;  // vanished or dangling link
    EntryStat es;
    es.ino = st.st_ino;
    es.size = st.st_size;
    es.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    es.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
    es.nlink = st.st_nlink;
    es.is_dir = S_ISDIR(st.st_mode);
    out.emplace(std::move(name), es);
  }
  ::closedir(d);
  return true;
}

sys::Error PollWatcher::watchDir(const std::string& dir) {
  if (dirs_.count(dir) != 0) return sys::Error::ok();
  Snapshot snap;
  if (!snapshot(dir, snap)) return sys::Error::fromErrno(errno, "opendir " + dir);
  dirs_.emplace(dir, std::move(snap));
  return sys::Error::ok();
}

void PollWatcher::start() {
  if (started_ || !timer_) return;
  uv_timer_start(timer_.get(), &PollWatcher::onTimer, interval_ms_, interval_ms_);
  started_ = true;
}

void PollWatcher::stop() {
  if (!started_ || !timer_) return;
  uv_timer_stop(timer_.get());
  started_ = false;
}

void PollWatcher::close(std::function<void()> on_closed) {
  started_ = false;
  dirs_.clear();
  timer_.close(std::move(on_closed));
}

void PollWatcher::onTimer(uv_timer_t* timer) {
  static_cast<PollWatcher*>(timer->data)->pollOnce();
}

void PollWatcher::pollOnce() {
  std::vector<WatchHandler::Event> events;
  std::vector<std::string> gone;
  for (auto& [dir, old_snap] : dirs_) {
    Snapshot snap;
    if (!snapshot(dir, snap)) {
      // Out of descriptors is not "the directory went away": keep it and look again next time.
      if (errno == EMFILE || errno == ENFILE) continue;
      gone.push_back(dir);
      events.push_back({dir, "", WatchHandler::Kind::kRemoved, true, 0});
      continue;
    }
    for (const auto& [name, st] : snap) {
      auto it = old_snap.find(name);
      if (it == old_snap.end() || it->second.ino != st.ino) {
        events.push_back({dir, name, WatchHandler::Kind::kCreated, st.is_dir, 0});
      } else if (!(it->second == st)) {
        events.push_back({dir, name, WatchHandler::Kind::kContent, st.is_dir, 0});
      }
    }
    for (const auto& [name, st] : old_snap) {
      if (snap.count(name) == 0) {
        events.push_back({dir, name, WatchHandler::Kind::kRemoved, st.is_dir, 0});
      }
    }
    old_snap = std::move(snap);
  }
  for (const auto& dir : gone) dirs_.erase(dir);
  if (!events.empty()) handler_.changed(events);
}

}  // namespace logsplice::inputs
