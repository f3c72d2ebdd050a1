#include "inputs/discovery.h"

#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

namespace logsplice::inputs {
namespace {

// Filesystems where inotify sees only this kernel's own operations (docs/design.md K7): writes
// by other NFS/SMB clients or by a FUSE server send no events, so such directories are polled.
constexpr long kNfsMagic = 0x6969;
constexpr long kFuseMagic = 0x65735546;
constexpr long kSmb2Magic = static_cast<long>(0xFE534D42);
constexpr long kCifsMagic = static_cast<long>(0xFF534D42);

std::string absolutePattern(const std::string& p) {
  if (!p.empty() && p.front() == '/') return p;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return p;
  return joinPath(cwd, p);
}

}  // namespace

Discovery::Discovery(uv_loop_t* loop, const config::InputConfig& cfg, DiscoveryHandler& handler)
    : loop_(loop), cfg_(cfg), handler_(handler) {}

Discovery::~Discovery() = default;

sys::Error Discovery::init() {
  for (const auto& p : cfg_.paths) {
    auto g = PathGlob::compile(absolutePattern(p));
    if (!g.ok())
      return sys::Error::invalidConfig("input '" + cfg_.name + "': " + g.error().context());
    globs_.push_back(std::move(g.value()));
  }
  if (cfg_.poll) {
    spdlog::info("input '{}': stat polling every {} ms (poll: true)", cfg_.name,
                 cfg_.poll_interval.count());
    return sys::Error::ok();
  }
  uint64_t delay = static_cast<uint64_t>(cfg_.batch_delay.value_or(config::Millis(0)).count());
  auto w = InotifyWatcher::create(loop_, *this, delay);
  if (!w.ok()) {
    // EMFILE: fs.inotify.max_user_instances is per user, shared with every other process.
    spdlog::warn("input '{}': inotify unavailable ({}); falling back to stat polling every {} ms",
                 cfg_.name, w.error().toString(), cfg_.poll_interval.count());
    return sys::Error::ok();
  }
  inotify_ = std::move(w.value());
  return sys::Error::ok();
}

bool Discovery::excluded(const std::string& path) const {
  std::string base = baseName(path);
  for (const auto& ex : cfg_.exclude) {
    // No FNM_PATHNAME: `*` may cross '/', so "/var/log/*.gz" and "**/old/*" work on full paths.
    if (::fnmatch(ex.c_str(), path.c_str(), 0) == 0) return true;
    if (::fnmatch(ex.c_str(), base.c_str(), 0) == 0) return true;
  }
  return false;
}

bool Discovery::isCandidate(const std::string& path) const {
  for (const auto& g : globs_) {
    if (g.matches(path)) return !excluded(path);
  }
  return false;
}

int Discovery::scan(const std::function<void(const std::string&)>& on_file,
                    const PathGlob::DirErrorFn& on_dir_error) {
  return scanStat([&](const std::string& path, const struct stat*) { on_file(path); },
                  on_dir_error);
}

int Discovery::scanStat(const PathGlob::FileStatFn& on_file,
                        const PathGlob::DirErrorFn& on_dir_error) {
  fd_error_ = 0;
  std::set<std::string> ancestors;
  for (const auto& g : globs_) {
    struct stat st;
    if (::stat(g.root().c_str(), &st) != 0) {
      // The root does not exist yet: watch the deepest existing ancestor to see it appear.
      std::string dir = g.root();
      while (dir != "/" && ::stat(dir.c_str(), &st) != 0) dir = dirName(dir);
      ancestors.insert(dir);
      continue;
    }
    int err = g.expandStat([this](const std::string& dir) { watch(dir); },
                           [&](const std::string& path, const struct stat* st) {
                             if (!excluded(path)) on_file(path, st);
                           },
                           on_dir_error);
    if (err != 0) fd_error_ = err;
  }
  for (const auto& dir : ancestors) watch(dir);
  for (const auto& dir : ancestors_) {
    if (ancestors.count(dir) != 0) continue;
    bool needed = false;
    for (const auto& g : globs_) needed = needed || g.couldContain(dir);
    if (!needed) {
      if (inotify_) inotify_->unwatchDir(dir);
      if (poll_) poll_->unwatchDir(dir);
    }
  }
  ancestors_ = std::move(ancestors);
  return fd_error_;
}

void Discovery::watchExtra(const std::string& dir) {
  watch(dir);
}

bool Discovery::isEventlessFs(const std::string& dir, long* f_type) {
  struct statfs sfs;
  if (::statfs(dir.c_str(), &sfs) != 0) return false;
  *f_type = static_cast<long>(sfs.f_type);
  return *f_type == kNfsMagic || *f_type == kFuseMagic || *f_type == kSmb2Magic ||
         *f_type == kCifsMagic;
}

PollWatcher& Discovery::pollBackend() {
  if (!poll_) {
    poll_ = std::make_unique<PollWatcher>(loop_, *this, cfg_.poll_interval);
    if (started_) poll_->start();
  }
  return *poll_;
}

void Discovery::watch(const std::string& dir) {
  if ((inotify_ && inotify_->watches(dir)) || (poll_ && poll_->watches(dir))) return;
  long f_type = 0;
  bool use_poll = inotify_ == nullptr;
  if (!use_poll && isEventlessFs(dir, &f_type)) {
    spdlog::info(
        "input '{}': {} is on a filesystem without inotify events (f_type 0x{:x}); "
        "stat polling it every {} ms",
        cfg_.name, dir, static_cast<unsigned long>(f_type), cfg_.poll_interval.count());
    use_poll = true;
  }
  if (!use_poll) {
    sys::Error err = inotify_->watchDir(dir);
    if (err.isOk()) return;
    if (err.sysErrno() != ENOSPC) {
      spdlog::debug("input '{}': not watching {}: {}", cfg_.name, dir, err.toString());
      return;
    }
    if (!warned_no_space_) {
      spdlog::warn(
          "input '{}': out of inotify watches (fs.inotify.max_user_watches); stat "
          "polling {} and further directories every {} ms",
          cfg_.name, dir, cfg_.poll_interval.count());
      warned_no_space_ = true;
    }
  }
  sys::Error err = pollBackend().watchDir(dir);
  if (err.sysErrno() == EMFILE || err.sysErrno() == ENFILE) fd_error_ = err.sysErrno();
  if (!err.isOk()) spdlog::debug("input '{}': not polling {}: {}", cfg_.name, dir, err.toString());
}

void Discovery::start() {
  started_ = true;
  if (inotify_) inotify_->start();
  if (poll_) poll_->start();
}

void Discovery::stop() {
  started_ = false;
  if (inotify_) inotify_->stop();
  if (poll_) poll_->stop();
}

void Discovery::close(std::function<void()> on_closed) {
  started_ = false;
  auto pending = std::make_shared<int>(2);
  auto done = [pending, cb = std::move(on_closed)]() {
    if (--*pending == 0 && cb) cb();
  };
  if (inotify_) {
    inotify_->close(done);
  } else {
    done();
  }
  if (poll_) {
    poll_->close(done);
  } else {
    done();
  }
}

void Discovery::changed(const std::vector<Event>& events) {
  bool rescan = false;
  std::vector<Event> files;
  files.reserve(events.size());
  for (const auto& ev : events) {
    if (ev.name.empty()) {  // a watched directory itself went away
      rescan = true;
    } else if (ev.is_dir) {
      if (ev.kind == Kind::kContent) continue;
      std::string path = joinPath(ev.dir, ev.name);
      bool relevant = ancestors_.count(ev.dir) != 0;
      for (const auto& g : globs_) relevant = relevant || g.couldContain(path);
      rescan = rescan || relevant;
    } else {
      files.push_back(ev);
    }
  }
  DiscoveryHandler& handler = handler_;
  if (!files.empty()) handler.entriesChanged(files);
  if (rescan) handler.rescanNeeded(false);
}

}  // namespace logsplice::inputs
