#include "outputs/archive_sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "sys/make_dirs.h"
#include "sys/splice.h"
#include "outputs/archive_naming.h"
#include "sys/assert.h"

namespace logsplice::outputs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kIdleClose = std::chrono::seconds(60);
// Archive files open at once. With thousands of source files the sink would otherwise hold one
// descriptor per source; the least recently written (at a line end) is closed and reopened at
// its offset when its source writes again, so no extra archive files appear.
constexpr size_t kMaxOpenArchiveFiles = 64;

}  // namespace

ArchiveSink::ArchiveSink(uv_loop_t* loop, std::string name, const config::ArchiveOutput& cfg,
                         SinkListener& listener, size_t pipe_bytes, sys::SysCalls& sys)
    : Sink(std::move(name), listener), loop_(loop), cfg_(cfg), pipe_bytes_(pipe_bytes), sys_(sys) {}

ArchiveSink::~ArchiveSink() {
  for (auto& [key, f] : files_) closeFile(f);
}

sys::Error ArchiveSink::start() {
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  if (auto err = sys::makeDirs(cfg_.dir)) {
    // Not fatal: the disk may come back (or the directory be created); the sink waits paused.
    pause(err);
  }
  LS_CHECK_UV(timer_.init(uv_timer_init, loop_, this));
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) static_cast<ArchiveSink*>(t->data)->tick();
      },
      1000, 1000);
  state_ = SinkState::kConnected;
  return sys::Error::ok();
}

void ArchiveSink::pause(const sys::Error& why) {
  // One outage is one pause, however many retries fail during it.
  if (!pause_logged_) {
    ++stats_.pauses;
    spdlog::warn("output '{}': paused: {}; retrying every second, other outputs continue", name_,
                 why.toString());
    pause_logged_ = true;
  }
  paused_ = true;
}

sys::Error ArchiveSink::openNew(const std::string& key, const Segment& seg) {
  std::time_t now = std::time(nullptr);
  std::string dir = archiveDirFor(cfg_.dir, seg.source->input, seg.source->source_name, now);
  if (auto err = sys::makeDirs(dir)) return err;
  for (int collision = 0; collision < 1000; ++collision) {
    std::string path = dir + "/" + archiveFileName(now, collision);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return sys::Error::fromErrno(errno, "open " + path);
    OpenFile f;
    f.fd.reset(fd);
    f.path = path;
    f.opened = f.last_write = Clock::now();
    files_[key] = std::move(f);
    spdlog::debug("output '{}': writing {}", name_, path);
    return sys::Error::ok();
  }
  return sys::Error::io("too many archive files in " + dir + " this second");
}

sys::Result<ArchiveSink::OpenFile*> ArchiveSink::fileFor(const Segment& seg) {
  std::string key = seg.source->input + '\0' + seg.source->source_name;
  auto it = files_.find(key);
  if (it != files_.end()) {
    OpenFile& f = it->second;
    bool full = f.offset >= cfg_.rotate_max_bytes;
    bool old = Clock::now() - f.opened >= cfg_.rotate_max_age;
    if ((!full && !old) || !f.at_line_end) {
      if (!f.fd) {
        // Closed to stay under kMaxOpenArchiveFiles: continue the same file at its offset.
        makeRoom();
        int fd = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) return sys::Error::fromErrno(errno, "open " + f.path);
        f.fd.reset(fd);
        ++open_count_;
      }
      return &f;
    }
    closeFile(f);
    files_.erase(it);
  }
  makeRoom();
  if (auto err = openNew(key, seg)) return err;
  ++open_count_;
  return &files_[key];
}

void ArchiveSink::makeRoom() {
  while (open_count_ >= kMaxOpenArchiveFiles) {
    OpenFile* lru = nullptr;
    for (auto& [key, f] : files_) {
      if (f.fd && f.at_line_end && (!lru || f.last_write < lru->last_write)) lru = &f;
    }
    if (!lru) return;  // every open file is mid-line: go over the cap rather than split a line
    closeFile(*lru);
  }
}

void ArchiveSink::closeFile(OpenFile& f) {
  if (!f.fd) return;
  --open_count_;
  if (cfg_.fsync != config::FsyncPolicy::kNever && f.dirty) ::fdatasync(f.fd.get());
  f.dirty = false;
  if (auto err = f.fd.close()) {
    spdlog::warn("output '{}': closing {}: {}", name_, f.path, err.toString());
  }
}

sys::Result<size_t> ArchiveSink::copyToFile(OpenFile& f, size_t len) {
  // Bytes read from the pipe are ours until written: keep them in carry_ across failures.
  if (carry_.empty()) {
    carry_.resize(std::min<size_t>(len, 64 * 1024));
    ssize_t n = ::read(pipe_.readFd(), carry_.data(), carry_.size());
    if (n <= 0) {
      carry_.clear();
      if (n < 0 && errno == EAGAIN) return sys::Error(sys::ErrorCode::kWouldBlock, "read pipe");
      return sys::Error::fromErrno(n < 0 ? errno : EIO, "read pipe");
    }
    carry_.resize(static_cast<size_t>(n));
    sys::CopyCounter::add(static_cast<uint64_t>(n));
  }
  auto r = sys_.pwrite(f.fd.get(), carry_.data(), carry_.size(), static_cast<off_t>(f.offset));
  if (r.failed()) return sys::Error::fromErrno(r.err, "write " + f.path);
  size_t n = static_cast<size_t>(r.value);
  carry_.erase(0, n);
  f.offset += n;
  return n;
}

void ArchiveSink::drain() {
  if (!canDeliver()) return;
  bool moved = false;
  while (drainable() > 0) {
    uint64_t pos = head_stream_pos_;
    const Segment* seg = nullptr;
    uint64_t seg_left = 0;
    for (const Segment& s : segments_) {
      uint64_t end = pos + s.streamBytes();
      if (stream_written_ < end) {
        seg = &s;
        seg_left = end - stream_written_;
        break;
      }
      pos = end;
    }
    if (!seg) break;  // cannot happen: drainable() > 0 means a registered segment is unwritten
    auto file = fileFor(*seg);
    if (!file.ok()) {
      pause(file.error());
      break;
    }
    OpenFile& f = *file.value();
    size_t want = static_cast<size_t>(std::min(seg_left, drainable()));
    sys::Result<size_t> r =
        copy_mode_ ? copyToFile(f, want)
                   : sys::splicePipeToFd(sys_, pipe_.readFd(), f.fd.get(), &f.offset, want, false);
    if (!r.ok()) {
      const sys::Error& err = r.error();
      if (err.code() == sys::ErrorCode::kUnsupported && !copy_mode_) {
        spdlog::warn("output '{}': {} refuses splice ({}); using read/write, counted as copies",
                     name_, f.path, err.toString());
        copy_mode_ = true;
        continue;
      }
      if (err.code() == sys::ErrorCode::kWouldBlock) break;
      pause(err);
      break;
    }
    if (r.value() == 0) break;
    f.dirty = true;
    f.last_write = Clock::now();
    f.at_line_end = r.value() == seg_left && seg->ends_line;
    stream_written_ += r.value();
    stats_.bytes_sent += r.value();
    moved = true;
    deliveredUpTo(stream_written_);
  }
  if (moved && pause_logged_) {
    spdlog::info("output '{}': writing again", name_);
    pause_logged_ = false;
  }
  if (moved) listener_.sinkReady(*this);
}

void ArchiveSink::tick() {
  auto now = Clock::now();
  for (auto it = files_.begin(); it != files_.end();) {
    OpenFile& f = it->second;
    if (cfg_.fsync == config::FsyncPolicy::kInterval && f.dirty && f.fd) {
      ::fdatasync(f.fd.get());
      f.dirty = false;
    }
    if (f.at_line_end &&
        (now - f.last_write >= kIdleClose || now - f.opened >= cfg_.rotate_max_age)) {
      closeFile(f);
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  if (paused_ && state_ == SinkState::kConnected) {
    paused_ = false;
    drain();
    if (!paused_) listener_.sinkReady(*this);
  }
}

std::vector<std::string> ArchiveSink::openFiles() const {
  std::vector<std::string> out;
  for (const auto& [key, f] : files_) {
    if (f.fd) out.push_back(f.path);
  }
  return out;
}

void ArchiveSink::stop() {
  drain();
  for (auto& [key, f] : files_) closeFile(f);
  files_.clear();
  state_ = SinkState::kStopped;
}

void ArchiveSink::close(std::function<void()> on_closed) {
  stop();
  timer_.close();
  if (on_closed) on_closed();
}

}  // namespace logsplice::outputs
