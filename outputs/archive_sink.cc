#include "outputs/archive_sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "sys/make_dirs.h"
#include "sys/splice.h"
#include "outputs/archive_naming.h"
#include "sys/assert.h"

namespace logsplice::outputs {
namespace {

constexpr uint64_t kIdleCloseMs = 60 * 1000;
// Archive files open at once. With thousands of source files the sink would otherwise hold one
// descriptor per source; the least recently written (at a line end) is closed and reopened at
// its offset when its source writes again, so no extra archive files appear.
constexpr size_t kMaxOpenArchiveFiles = 64;

}  // namespace

ArchiveSink::ArchiveSink(uv_loop_t* loop, std::string name, const config::ArchiveOutput& cfg,
                         SinkListener& listener, size_t pipe_bytes, sys::SysCalls& sys,
                         sys::Clock& clock)
    : StreamSink(std::move(name), listener, sys),
      loop_(loop),
      cfg_(cfg),
      pipe_bytes_(pipe_bytes),
      clock_(clock) {}

ArchiveSink::~ArchiveSink() {
  for (auto& [key, f] : files_) (void)closeFile(f);
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
  std::time_t now = static_cast<std::time_t>(clock_.unixSeconds());
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
    f.opened_ms = f.last_write_ms = clock_.monotonicMs();
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
    if (f.sync_failed) return sys::Error::io("fdatasync " + f.path + " failed");
    bool full = f.offset >= cfg_.rotate_max_bytes;
    bool old = clock_.monotonicMs() - f.opened_ms >=
               static_cast<uint64_t>(cfg_.rotate_max_age.count());
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
    std::string path = f.path;
    bool synced = closeFile(f);
    files_.erase(it);
    if (!synced) return sys::Error::io("fdatasync " + path + " failed at rotation");
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
      if (f.fd && f.at_line_end && (!lru || f.last_write_ms < lru->last_write_ms)) lru = &f;
    }
    if (!lru) return;  // every open file is mid-line: go over the cap rather than split a line
    closeFile(*lru);
  }
}

bool ArchiveSink::syncFile(OpenFile& f) {
  if (!f.dirty || !f.fd) return true;
  sys::SysResult r = sys_.fdatasync(f.fd.get());
  if (r.failed()) {
    ++sync_failures_;
    f.sync_failed = true;
    sync_failed_ = true;
    spdlog::error("output '{}': fdatasync {}: {} (errno {}); its bytes may not be on disk",
                  name_, f.path, std::strerror(r.err), r.err);
    pause(sys::Error::fromErrno(r.err, "fdatasync " + f.path));
    return false;
  }
  f.dirty = false;
  return true;
}

bool ArchiveSink::closeFile(OpenFile& f) {
  if (!f.fd) return true;
  --open_count_;
  bool synced = cfg_.fsync == config::FsyncPolicy::kNever || syncFile(f);
  f.dirty = false;
  if (auto err = f.fd.close()) {
    spdlog::warn("output '{}': closing {}: {}", name_, f.path, err.toString());
  }
  return synced;
}

void ArchiveSink::syncAndDeliver() {
  bool all = true;
  for (auto& [key, f] : files_) all = syncFile(f) && all;
  if (all && !sync_failed_) deliveredUpTo(stream_written_);
}

void ArchiveSink::recoverFromSyncFailure() {
  for (auto it = files_.begin(); it != files_.end();) {
    OpenFile& f = it->second;
    if (!f.sync_failed) {
      ++it;
      continue;
    }
    // Never written to again: the next bytes of its source start a new archive file.
    if (f.fd) --open_count_;
    f.fd.reset();
    it = files_.erase(it);
  }
  sync_failed_ = false;
  carry_.clear();  // part of the stream that was not written: resent with the rest
  rewindUnacknowledged();
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
    stats_.bytes_copied += static_cast<uint64_t>(n);
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
    uint64_t seg_left = 0;
    const Segment* seg = unwrittenSegment(&seg_left);
    if (!seg) break;  // cannot happen: drainable() > 0 means a registered segment is unwritten
    auto file = fileFor(*seg);
    if (!file.ok()) {
      pause(file.error());
      break;
    }
    OpenFile& f = *file.value();
    uint64_t want = std::min(seg_left, drainable());
    sys::Result<size_t> r = size_t{0};
    if (copy_mode_) {
      r = copyToFile(f, static_cast<size_t>(want));
      if (r.ok()) {
        stream_written_ += r.value();
        stats_.bytes_sent += r.value();
      }
    } else {
      r = spliceOut(f.fd.get(), &f.offset, want);
    }
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
    f.last_write_ms = clock_.monotonicMs();
    f.at_line_end = r.value() == seg_left && seg->ends_line;
    moved = true;
    if (deliverOnWrite()) deliveredUpTo(stream_written_);
  }
  if (moved && pause_logged_) {
    spdlog::info("output '{}': writing again", name_);
    pause_logged_ = false;
  }
  if (moved) listener_.sinkReady(*this);
}

void ArchiveSink::tick() {
  uint64_t now = clock_.monotonicMs();
  // Only a pause from before this tick is retried: one that starts now waits a second.
  const bool was_paused = paused_;
  if (cfg_.fsync == config::FsyncPolicy::kInterval && !sync_failed_) syncAndDeliver();
  for (auto it = files_.begin(); it != files_.end();) {
    OpenFile& f = it->second;
    if (!f.sync_failed && f.at_line_end &&
        (now - f.last_write_ms >= kIdleCloseMs ||
         now - f.opened_ms >= static_cast<uint64_t>(cfg_.rotate_max_age.count()))) {
      (void)closeFile(f);
      if (!f.sync_failed) {
        it = files_.erase(it);
        continue;
      }
    }
    ++it;
  }
  if (was_paused && paused_ && state_ == SinkState::kConnected) {
    if (sync_failed_) recoverFromSyncFailure();
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
  if (!deliverOnWrite() && !sync_failed_) syncAndDeliver();
  for (auto& [key, f] : files_) (void)closeFile(f);
  files_.clear();
  state_ = SinkState::kStopped;
}

void ArchiveSink::close(std::function<void()> on_closed) {
  stop();
  timer_.close(std::move(on_closed));
}

}  // namespace logsplice::outputs
