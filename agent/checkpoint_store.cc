#include "agent/checkpoint_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "sys/make_dirs.h"

namespace logsplice::agent {
namespace {

sys::Error fsyncDir(const std::string& dir) {
  sys::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys::Error::fromErrno(errno, "open " + dir);
  if (::fsync(fd.get()) != 0) return sys::Error::fromErrno(errno, "fsync " + dir);
  return sys::Error::ok();
}

// ENOENT is reported as a missing file (*missing = true, no error).
sys::Error readWhole(const std::string& path, std::string* text, bool* missing) {
  text->clear();
  *missing = false;
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      *missing = true;
      return sys::Error::ok();
    }
    return sys::Error::fromErrno(errno, "checkpoint file " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0) text->reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::Error::fromErrno(errno, "read " + path);
    }
    if (n == 0) break;
    text->append(buf, static_cast<size_t>(n));
  }
  return sys::Error::ok();
}

bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

CompactionPolicy CompactionPolicy::fromEnv() {
  CompactionPolicy p;
  if (const char* v = std::getenv("LOGSPLICE_CHECKPOINT_COMPACT_BYTES"); v && *v) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (end && *end == '\0' && n > 0) {
      p.min_log_bytes = n;
      p.follow_snapshot_size = false;
    }
  }
  return p;
}

CheckpointStore::CheckpointStore(std::string data_dir, CompactionPolicy policy)
    : dir_(std::move(data_dir)),
      path_(dir_ + "/checkpoints"),
      log_path_(dir_ + "/checkpoints.log"),
      policy_(policy) {}

sys::Error CheckpointStore::prepare() {
  if (auto err = sys::makeDirs(dir_)) {
    return sys::Error(err.code(), "data_dir: " + err.context(), err.sysErrno());
  }
  if (::access(dir_.c_str(), W_OK | X_OK) != 0) {
    return sys::Error::fromErrno(errno, "data_dir " + dir_ + " is not writable");
  }
  return sys::Error::ok();
}

std::string CheckpointStore::serialize() const {
  return snapshotText(generation_);
}

std::string CheckpointStore::snapshotText(uint64_t generation) const {
  std::string text;
  text.reserve(64 + entries_.size() * 160);
  ckpt::appendSnapshotHeader(text, generation);
  for (const auto& [key, stored] : entries_) ckpt::appendSnapshotEntry(text, stored.payload);
  ckpt::appendSnapshotTrailer(text, entries_.size());
  return text;
}

sys::Result<std::map<std::pair<uint64_t, uint64_t>, CheckpointEntry>> CheckpointStore::parse(
    const std::string& text, const std::string& name) {
  auto snap = ckpt::parseSnapshot(text, name);
  if (!snap.ok()) return snap.error();
  return std::move(snap.value().entries);
}

sys::Error CheckpointStore::load() {
  entries_.clear();
  changed_.clear();
  log_fd_.reset();  // the next flush starts a fresh log (after a torn tail, never append to it)
  dirty_ = false;
  oldest_updated_ = INT64_MIN;
  generation_ = 0;
  log_bytes_ = 0;

  std::string log_text;
  bool log_missing = false;
  uint64_t log_gen = 0;
  bool log_headed = false;
  size_t pos = 0;
  std::string_view payload;
  if (auto err = readWhole(log_path_, &log_text, &log_missing); err) {
    spdlog::warn("checkpoint log ignored: {}", err.toString());
  } else if (!log_missing && ckpt::readRecord(log_text, &pos, &payload) == ckpt::ReadStatus::kOk) {
    log_headed = ckpt::parseLogHeader(payload, &log_gen);
  }

  std::string text;
  bool missing = false;
  sys::Error err = readWhole(path_, &text, &missing);
  // Whatever happens, later snapshots must carry a generation above any seen on disk, so that
  // a stale log is never mistaken for the log of a new snapshot.
  generation_ = std::max(log_gen, err ? 0 : ckpt::peekSnapshotGeneration(text));
  if (err) return err;
  if (missing) {
    if (log_headed) spdlog::warn("{}: no snapshot beside it; ignored", log_path_);
    return sys::Error::ok();
  }
  auto snap = ckpt::parseSnapshot(text, path_);
  if (!snap.ok()) return snap.error();
  ckpt::EntryMap loaded = std::move(snap.value().entries);
  snapshot_bytes_ = text.size();
  replayLog(log_text, log_headed, log_gen, snap.value().generation, pos, loaded);
  // Held as payloads from now on (see Stored).
  for (auto& [key, e] : loaded) {
    Stored& st = entries_[key];
    st.updated_unix = e.updated_unix;
    ckpt::appendPutPayload(st.payload, e);
  }
  return sys::Error::ok();
}

void CheckpointStore::replayLog(const std::string& log_text, bool log_headed, uint64_t log_gen,
                                uint64_t gen, size_t pos, ckpt::EntryMap& loaded) {
  if (!log_headed || log_gen != gen) {
    // A log of an older generation: a crash came after the new snapshot was renamed into place
    // and before its log replaced the old one; the snapshot already holds every change.
    if (log_headed && log_gen > gen) {
      spdlog::warn("{}: generation {} is newer than the snapshot's ({}); ignored", log_path_,
                   log_gen, gen);
    } else if (!log_headed && !log_text.empty()) {
      spdlog::warn("{}: no valid header; ignored", log_path_);
    }
    return;
  }
  size_t records = 0;
  std::string_view payload;
  for (;;) {
    size_t at = pos;
    ckpt::ReadStatus st = ckpt::readRecord(log_text, &pos, &payload);
    if (st == ckpt::ReadStatus::kEnd) break;
    if (st == ckpt::ReadStatus::kBad || !ckpt::applyRecord(payload, loaded)) {
      // A torn last record (a crash mid-append) or damage: everything before it stands.
      spdlog::warn("{}: record at byte {} is incomplete or damaged; {} bytes after it ignored",
                   log_path_, at, log_text.size() - at);
      break;
    }
    ++records;
  }
  log_bytes_ = log_text.size();
  spdlog::debug("checkpoints: {} entries from generation {} and {} log records", loaded.size(), gen,
                records);
}

const CheckpointEntry* CheckpointStore::find(uint64_t dev, uint64_t ino) const {
  auto it = entries_.find({dev, ino});
  if (it == entries_.end() || !ckpt::parsePutPayload(it->second.payload, &found_)) return nullptr;
  return &found_;
}

void CheckpointStore::noteChanged(const ckpt::Key& key) {
  changed_.insert(key);
  dirty_ = true;
}

void CheckpointStore::put(CheckpointEntry entry) {
  auto key = ckpt::keyOf(entry);
  oldest_updated_ = std::min(oldest_updated_, entry.updated_unix);
  Stored& st = entries_[key];
  st.updated_unix = entry.updated_unix;
  st.payload.clear();
  ckpt::appendPutPayload(st.payload, entry);
  st.payload.shrink_to_fit();
  noteChanged(key);
}

void CheckpointStore::forget(uint64_t dev, uint64_t ino) {
  if (entries_.erase({dev, ino}) > 0) noteChanged({dev, ino});
}

std::vector<inputs::KnownFile> CheckpointStore::knownFiles(const std::string& input) const {
  std::vector<inputs::KnownFile> out;
  CheckpointEntry e;
  for (const auto& [key, stored] : entries_) {
    if (ckpt::parsePutPayload(stored.payload, &e) && e.input == input) {
      out.push_back({e.path, e.identity});
    }
  }
  return out;
}

size_t CheckpointStore::expire(int64_t older_than_unix) {
  // Called every interval: skip the walk over every entry while none can be old enough.
  if (older_than_unix <= oldest_updated_) return 0;
  size_t n = 0;
  int64_t oldest = INT64_MAX;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.updated_unix < older_than_unix) {
      changed_.insert(it->first);
      it = entries_.erase(it);
      ++n;
    } else {
      oldest = std::min(oldest, it->second.updated_unix);
      ++it;
    }
  }
  oldest_updated_ = oldest;
  if (n) dirty_ = true;
  return n;
}

uint64_t CheckpointStore::compactThreshold() const {
  if (!policy_.follow_snapshot_size) return policy_.min_log_bytes;
  return std::max(policy_.min_log_bytes, snapshot_bytes_);
}

sys::Error CheckpointStore::flush() {
  if (!dirty_) return sys::Error::ok();
  auto started = std::chrono::steady_clock::now();
  sys::Error err = log_fd_ ? appendChanges() : compact();
  if (err) return err;
  ++writes_;
  last_write_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return sys::Error::ok();
}

sys::Error CheckpointStore::appendChanges() {
  std::string records;
  records.reserve(changed_.size() * 200);
  std::string payload;
  for (const auto& key : changed_) {
    payload.clear();
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      payload = it->second.payload;
    } else {
      ckpt::appendForgetPayload(payload, key);
    }
    ckpt::appendRecord(records, payload);
  }
  if (log_bytes_ + records.size() > compactThreshold()) return compact();
  if (!writeAll(log_fd_.get(), records) || ::fdatasync(log_fd_.get()) != 0) {
    int e = errno;
    // The log may end in a partial record now: never append after it; compact next time.
    log_fd_.reset();
    return sys::Error::fromErrno(e, "append to checkpoint log " + log_path_);
  }
  log_bytes_ += records.size();
  changed_.clear();
  dirty_ = false;
  return sys::Error::ok();
}

sys::Error CheckpointStore::writeSnapshot(uint64_t generation, size_t* bytes) {
  std::string text = snapshotText(generation);
  *bytes = text.size();
  std::string tmp = path_ + ".tmp";
  sys::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return sys::Error::fromErrno(errno, "write checkpoint " + tmp);
  auto fail = [&](int err, const std::string& what) {
    ::unlink(tmp.c_str());  // never leave a half-written temp file behind
    return sys::Error::fromErrno(err, what + " " + tmp);
  };
  if (!writeAll(fd.get(), text)) return fail(errno, "write checkpoint");
  if (::fsync(fd.get()) != 0) return fail(errno, "fsync");
  if (auto err = fd.close()) return fail(err.sysErrno(), "close");
  if (crashAt(CompactStep::kSnapshotTempWritten)) return sys::Error::io("simulated crash");
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return fail(errno, "rename");
  return fsyncDir(dir_);
}

sys::Error CheckpointStore::startLog(uint64_t generation) {
  std::string tmp = log_path_ + ".tmp";
  sys::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return sys::Error::fromErrno(errno, "write checkpoint log " + tmp);
  std::string header;
  ckpt::appendRecord(header, ckpt::logHeaderPayload(generation));
  if (!writeAll(fd.get(), header) || ::fsync(fd.get()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys::Error::fromErrno(e, "write checkpoint log " + tmp);
  }
  if (crashAt(CompactStep::kLogTempWritten)) return sys::Error::io("simulated crash");
  if (::rename(tmp.c_str(), log_path_.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys::Error::fromErrno(e, "rename " + tmp);
  }
  if (auto err = fsyncDir(dir_)) return err;
  log_fd_ = std::move(fd);  // the renamed file: appends go on through this descriptor
  log_bytes_ = header.size();
  return sys::Error::ok();
}

sys::Error CheckpointStore::compact() {
  // Order matters for recovery: the snapshot of generation g+1 is in place before the log of
  // generation g is replaced. A crash in between leaves snapshot g+1 and log g: the log's
  // generation tells that the snapshot already holds its changes.
  log_fd_.reset();
  uint64_t gen = generation_ + 1;
  size_t bytes = 0;
  if (auto err = writeSnapshot(gen, &bytes)) return err;
  generation_ = gen;  // on disk now: a retry must use a newer one
  snapshot_bytes_ = bytes;
  if (crashAt(CompactStep::kSnapshotRenamed)) return sys::Error::io("simulated crash");
  changed_.clear();
  dirty_ = false;
  ++compactions_;
  if (auto err = startLog(gen)) {
    // The snapshot holds everything; the next flush compacts again (log_fd_ is closed).
    dirty_ = true;
    return err;
  }
  return sys::Error::ok();
}

void CheckpointStore::collectMetrics(sys::MetricWriter& out) const {
  out.counter("logsplice_checkpoint_writes_total", "Checkpoint files written.", {},
              static_cast<double>(writes_));
  out.gauge("logsplice_checkpoint_last_write_seconds",
            "Time the last checkpoint write took, fsyncs included.", {}, last_write_seconds_);
  out.gauge("logsplice_checkpoint_entries", "Files the checkpoint file knows.", {},
            static_cast<double>(entries_.size()));
  out.counter("logsplice_checkpoint_compactions_total",
              "Checkpoint snapshots written (the change log folded into a new snapshot).", {},
              static_cast<double>(compactions_));
}

}  // namespace logsplice::agent
