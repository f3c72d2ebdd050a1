#include "agent/collect/mirror_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "agent/collect/mirror_paths.h"
#include "inputs/file_identity.h"
#include "outputs/mirror_protocol.h"
#include "sys/make_dirs.h"

namespace logsplice::agent::collect {
namespace {

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    size_t t = line.find('\t', i);
    out.push_back(line.substr(i, t == std::string::npos ? std::string::npos : t - i));
    if (t == std::string::npos) break;
    i = t + 1;
  }
  return out;
}

bool parseU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

sys::Error fsyncDir(const std::string& dir) {
  sys::UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) return sys::Error::fromErrno(errno, dir);
  if (::fsync(d.get()) != 0) return sys::Error::fromErrno(errno, "fsync " + dir);
  return sys::Error::ok();
}

bool isClash(int err) {
  return err == EISDIR || err == ENOTDIR || err == EEXIST || err == ENAMETOOLONG || err == ELOOP;
}

}  // namespace

sys::Error MirrorStore::load() {
  if (auto err = sys::makeDirs(dir_)) return err;
  std::ifstream in(dir_ + "/" + kIndexName);
  if (!in) return sys::Error::ok();  // a new dir
  std::string line;
  if (!std::getline(in, line) || line != kIndexHeader) {
    return sys::Error::corrupt(dir_ + "/" + kIndexName + ": not a version 1 index");
  }
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    auto f = splitTabs(line);
    auto file = std::make_unique<MirrorFile>();
    uint64_t fplen = 0;
    bool ok = f.size() == 9 && outputs::mirror::validName(f[0], outputs::mirror::kMaxHostBytes) &&
              outputs::mirror::validName(f[1], outputs::mirror::kMaxInputBytes) &&
              parseU64(f[2], &file->key.dev) && parseU64(f[3], &file->key.ino) &&
              parseU64(f[4], &file->key.generation) && parseU64(f[5], &file->fingerprint) &&
              parseU64(f[6], &fplen) && parseU64(f[7], &file->durable) && safeRelPath(f[8]);
    if (!ok || rels_.count(f[8])) {
      spdlog::warn("{}/{}:{}: bad index line skipped", dir_, kIndexName, lineno);
      continue;
    }
    file->key.host = f[0];
    file->key.input = f[1];
    file->fingerprint_len = static_cast<uint32_t>(fplen);
    file->rel = f[8];
    rels_.insert(file->rel);
    StreamKey key = file->key;
    files_[key] = std::move(file);
  }
  spdlog::info("collect: index of {} holds {} streams", dir_, files_.size());
  return sys::Error::ok();
}

bool MirrorStore::taken(const std::string& rel) const {
  if (rels_.count(rel)) return true;
  // A file the index does not know (a mirror whose entry was retired, or an index lost by
  // hand) is never reused: opening it would cut it back to nothing.
  struct stat st {};
  return ::lstat((dir_ + "/" + rel).c_str(), &st) == 0;
}

std::string MirrorStore::uniqueRel(const StreamKey& key, std::string_view path) {
  std::string base = mirrorRelPath(key.host, key.input, path, key.generation);
  if (!taken(base)) return base;
  // The same path held another file (rename rotation): this one is named by its inode too.
  std::string with_ino = base + "~" + std::to_string(key.ino);
  for (int n = 1; taken(with_ino); ++n) {
    with_ino = base + "~" + std::to_string(key.ino) + "-" + std::to_string(n);
  }
  return with_ino;
}

bool MirrorStore::sameFile(const MirrorFile& f, uint64_t fingerprint,
                           uint32_t fingerprint_len) const {
  if (fingerprint_len == 0 || f.durable == 0) return true;
  if (fingerprint_len == f.fingerprint_len) return fingerprint == f.fingerprint;
  // Fingerprints of different lengths: hash the mirror's own head when it holds that much
  // (at most FileIdentity::kFingerprintBytes read, never payload on its way).
  if (f.durable < fingerprint_len) return true;  // cannot tell: kept (docs/protocol.md)
  sys::UniqueFd fd(::open((dir_ + "/" + f.rel).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return true;
  std::string head(fingerprint_len, '\0');
  ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
  if (n != static_cast<ssize_t>(head.size())) return true;
  return inputs::fingerprintOf(head.data(), head.size()) == fingerprint;
}

sys::Result<MirrorFile*> MirrorStore::open(const StreamKey& key, uint64_t fingerprint,
                                           uint32_t fingerprint_len, std::string_view path) {
  auto it = files_.find(key);
  if (it != files_.end() && !it->second->owner && !sync_in_flight_ &&
      !sameFile(*it->second, fingerprint, fingerprint_len)) {
    // The inode was reused by another file (the old one deleted): the old mirror is kept under
    // its name, out of the index, and the new file gets a mirror of its own.
    spdlog::info(
        "collect: inode {} of host '{}' holds another file now; its old mirror {} is "
        "kept, out of the index",
        key.ino, key.host, it->second->rel);
    closeFile(*it->second);  // its reserved blocks too
    files_.erase(it);
    index_dirty_ = true;
    it = files_.end();
  }
  MirrorFile* f = nullptr;
  bool created = it == files_.end();
  if (created) {
    auto file = std::make_unique<MirrorFile>();
    file->key = key;
    file->fingerprint = fingerprint;
    file->fingerprint_len = fingerprint_len;
    file->rel = uniqueRel(key, path);
    f = file.get();
    rels_.insert(file->rel);
    files_[key] = std::move(file);
    index_dirty_ = true;
  } else {
    f = it->second.get();
    if (fingerprint_len > f->fingerprint_len && f->durable >= fingerprint_len) {
      // Verified above against the mirror's head: remember the longer fingerprint.
      f->fingerprint = fingerprint;
      f->fingerprint_len = fingerprint_len;
      index_dirty_ = true;
    }
  }
  if (!f->fd) {
    auto opened = openMirror(f->rel);
    if (!opened.ok() && created && isClash(opened.error().sysErrno())) {
      // A directory where the file should go, or a file where a directory should ("/a" and
      // "/a/b" both followed): this one gets a flat name under _clash/.
      std::string flat = sanitisePath(path);
      std::replace(flat.begin(), flat.end(), '/', '_');
      rels_.erase(f->rel);
      f->rel = uniqueRel(key, "/_clash/" + flat);
      rels_.insert(f->rel);
      opened = openMirror(f->rel);
    }
    if (!opened.ok()) {
      if (created) {
        rels_.erase(f->rel);
        files_.erase(key);
      }
      return opened.error();
    }
    std::string full = dir_ + "/" + f->rel;
    sys::UniqueFd owned = std::move(opened.value());
    int fd = owned.get();
    struct stat st {};
    if (::fstat(fd, &st) != 0) return sys::Error::fromErrno(errno, full);
    if (!S_ISREG(st.st_mode)) return sys::Error::io(full + ": not a regular file");
    // Past the durable length: never acknowledged, will be sent again. Shorter: the mirror
    // lost bytes (removed by hand?), and the agent resends from what is there.
    if (static_cast<uint64_t>(st.st_size) > f->durable) {
      if (::ftruncate(fd, static_cast<off_t>(f->durable)) != 0) {
        return sys::Error::fromErrno(errno, "ftruncate " + full);
      }
    } else if (static_cast<uint64_t>(st.st_size) < f->durable) {
      spdlog::warn("collect: {} is shorter than its durable length ({} < {})", full, st.st_size,
                   f->durable);
      f->durable = static_cast<uint64_t>(st.st_size);
      index_dirty_ = true;
    }
    f->written = f->durable;
    // Blocks past the end left reserved by a run that did not close the file (a crash; the
    // cut above frees them when it shortens the file) count as reserved, so that closing it
    // gives them back. The slack covers the extent-tree blocks st_blocks also counts.
    const uint64_t blocks = static_cast<uint64_t>(st.st_blocks) * 512;
    const bool reserved_past_end = static_cast<uint64_t>(st.st_size) <= f->durable &&
                                   blocks > (f->durable + 4095) / 4096 * 4096 + (64 << 10);
    f->allocated = reserved_past_end ? blocks : f->written;
    f->fd = std::move(owned);
  }
  return f;
}

void MirrorStore::closeFile(MirrorFile& f) {
  if (f.fd && f.allocated > f.written) {
    // Cutting to the same length frees the blocks reserved past it (ext4, xfs). A failure
    // only leaves them allocated.
    if (::ftruncate(f.fd.get(), static_cast<off_t>(f.written)) != 0) {
      spdlog::warn("collect: {}: cannot release the blocks reserved past its end: {}", f.rel,
                   std::strerror(errno));
    }
  }
  f.fd.reset();
  f.allocated = 0;
}

sys::Result<sys::UniqueFd> MirrorStore::openMirror(const std::string& rel) const {
  std::string full = dir_ + "/" + rel;
  size_t slash = full.rfind('/');
  if (auto err = sys::makeDirs(full.substr(0, slash))) return err;
  int fd = ::open(full.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return sys::Error::fromErrno(errno, full);
  return sys::UniqueFd(fd);
}

void MirrorStore::release(MirrorFile* f) {
  f->owner = nullptr;
  if (f->written == f->durable) closeFile(*f);
}

bool MirrorStore::dirty() const {
  if (index_dirty_) return true;
  for (const auto& [k, f] : files_) {
    if (f->fd && f->written > f->durable) return true;
  }
  return false;
}

std::unique_ptr<SyncJob> MirrorStore::prepareSync(bool reserve) {
  auto job = std::make_unique<SyncJob>();
  for (auto& [k, f] : files_) {
    if (!f->fd || f->written <= f->durable) continue;
    job->fds.push_back(f->fd.get());
    job->ends.emplace_back(k, f->written);
    if (reserve && preallocate_ && f->allocated < f->written + kPreallocateBytes) {
      job->reserve.push_back({f->fd.get(), k, std::max(f->allocated, f->written),
                              f->written + 2 * kPreallocateBytes, 0});
    }
  }
  if (job->ends.empty() && !index_dirty_) return nullptr;
  // The index the job writes records the new lengths: it is renamed into place after the
  // mirrors' fdatasync and before any acknowledgement.
  std::ostringstream s;
  s << kIndexHeader << '\n';
  size_t next = 0;
  for (const auto& [k, f] : files_) {
    uint64_t durable = f->durable;
    if (next < job->ends.size() && job->ends[next].first == k) durable = job->ends[next++].second;
    s << k.host << '\t' << k.input << '\t' << k.dev << '\t' << k.ino << '\t' << k.generation << '\t'
      << f->fingerprint << '\t' << f->fingerprint_len << '\t' << durable << '\t' << f->rel << '\n';
  }
  job->index_text = s.str();
  job->dir = dir_;
  index_dirty_ = false;  // a change while the job runs sets it again
  sync_in_flight_ = true;
  return job;
}

void SyncJob::run() {
  for (int fd : fds) {
    if (::fdatasync(fd) != 0) {
      err = sys::Error::fromErrno(errno, "fdatasync of a mirror");
      return;
    }
  }
  for (auto& r : reserve) {
    if (::fallocate(r.fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(r.from),
                    static_cast<off_t>(r.to - r.from)) != 0) {
      r.result = errno;
    }
  }
  err = writeIndex(dir, index_text);
}

sys::Error MirrorStore::finishSync(SyncJob& job, const std::function<void(MirrorFile&)>& synced) {
  sync_in_flight_ = false;
  // The files a job syncs stay open until here (never closed with unsynced bytes).
  for (const auto& r : job.reserve) {
    auto it = files_.find(r.key);
    if (r.result == 0) {
      if (it != files_.end() && it->second->fd) {
        it->second->allocated = std::max(it->second->allocated, r.to);
      }
    } else if ((r.result == EOPNOTSUPP || r.result == ENOSYS) && preallocate_) {
      spdlog::info("collect: {}: the filesystem does not preallocate; writing without", dir_);
      preallocate_ = false;
    }
    // ENOSPC, EDQUOT and the rest: nothing reserved; the write reports a full disk if it is.
  }
  if (job.err) {
    index_dirty_ = true;  // written again next time
    return job.err;
  }
  for (const auto& [key, end] : job.ends) {
    auto it = files_.find(key);
    if (it == files_.end()) continue;
    MirrorFile& f = *it->second;
    if (end <= f.durable) continue;
    f.durable = end;
    if (!f.owner && f.written == f.durable) closeFile(f);
    synced(f);
  }
  return sys::Error::ok();
}

sys::Error MirrorStore::syncAll(const std::function<void(MirrorFile&)>& synced) {
  auto job = prepareSync();
  if (!job) return sys::Error::ok();
  job->run();
  return finishSync(*job, synced);
}

sys::Error MirrorStore::saveIndex() {
  index_dirty_ = true;
  return syncAll([](MirrorFile&) {});
}

sys::Error writeIndex(const std::string& dir, const std::string& text) {
  std::string tmp = dir + "/" + MirrorStore::kIndexName + ".tmp";
  std::string final_path = dir + "/" + MirrorStore::kIndexName;
  sys::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return sys::Error::fromErrno(errno, tmp);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::Error::fromErrno(errno, tmp);
    }
    off += static_cast<size_t>(n);
  }
  if (::fdatasync(fd.get()) != 0) return sys::Error::fromErrno(errno, "fdatasync " + tmp);
  fd.reset();
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return sys::Error::fromErrno(errno, "rename " + tmp);
  }
  return fsyncDir(dir);
}

void MirrorStore::forEach(const std::function<void(const MirrorFile&)>& fn) const {
  for (const auto& [k, f] : files_) fn(*f);
}

}  // namespace logsplice::agent::collect
