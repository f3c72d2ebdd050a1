#include "agent/checkpoint_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "sys/make_dirs.h"
#include "sys/unique_fd.h"

namespace logsplice::agent {
namespace {

constexpr const char* kMagic = "logsplice-checkpoints";
constexpr int kVersion = 1;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Percent-encodes everything but printable ASCII other than space and '%'.
std::string encode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (c > 0x20 && c < 0x7f && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out.empty() ? "%" : out;  // a lone '%' stands for the empty string
}

bool decode(const std::string& s, std::string* out) {
  out->clear();
  if (s == "%") return true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    unsigned v = 0;
    if (std::sscanf(s.substr(i + 1, 2).c_str(), "%2X", &v) != 1) return false;
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

sys::Error fsyncDir(const std::string& dir) {
  sys::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys::Error::fromErrno(errno, "open " + dir);
  if (::fsync(fd.get()) != 0) return sys::Error::fromErrno(errno, "fsync " + dir);
  return sys::Error::ok();
}

}  // namespace

CheckpointStore::CheckpointStore(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/checkpoints") {}

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
  std::ostringstream body;
  body << kMagic << ' ' << kVersion << '\n';
  for (const auto& [key, e] : entries_) {
    char fp[17];
    std::snprintf(fp, sizeof fp, "%016" PRIx64, e.identity.fingerprint);
    body << "f " << e.identity.dev << ' ' << e.identity.ino << ' ' << fp << ' '
         << e.identity.fingerprint_len << ' ' << e.updated_unix << ' ' << encode(e.input) << ' '
         << encode(e.path) << '\n';
    for (const auto& [sink, off] : e.offsets) body << "s " << encode(sink) << ' ' << off << '\n';
  }
  std::string text = body.str();
  char trailer[64];
  std::snprintf(trailer, sizeof trailer, "end %zu %016" PRIx64 "\n", entries_.size(), fnv1a(text));
  return text + trailer;
}

sys::Result<std::map<std::pair<uint64_t, uint64_t>, CheckpointEntry>> CheckpointStore::parse(
    const std::string& text, const std::string& name) {
  std::map<std::pair<uint64_t, uint64_t>, CheckpointEntry> out;
  auto corrupt = [&](size_t line, const std::string& why) {
    return sys::Error::corrupt(name + ":" + std::to_string(line) + ": " + why);
  };
  size_t end_pos = text.rfind("end ");
  if (end_pos == std::string::npos || (end_pos > 0 && text[end_pos - 1] != '\n')) {
    return corrupt(0, "no end record (truncated file)");
  }
  std::string body = text.substr(0, end_pos);
  size_t count = 0;
  char sum[32] = {0};
  if (std::sscanf(text.c_str() + end_pos, "end %zu %16s", &count, sum) != 2) {
    return corrupt(0, "bad end record");
  }
  char want[17];
  std::snprintf(want, sizeof want, "%016" PRIx64, fnv1a(body));
  if (std::string(sum) != want) return corrupt(0, "checksum mismatch");

  std::istringstream in(body);
  std::string line;
  size_t n = 0;
  CheckpointEntry* current = nullptr;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream fields(line);
    std::string tag;
    fields >> tag;
    if (n == 1) {
      int version = 0;
      if (tag != kMagic || !(fields >> version)) return corrupt(n, "not a checkpoint file");
      if (version != kVersion) {
        return corrupt(n, "unsupported version " + std::to_string(version));
      }
      continue;
    }
    if (tag == "f") {
      CheckpointEntry e;
      std::string fp, input, path;
      if (!(fields >> e.identity.dev >> e.identity.ino >> fp >> e.identity.fingerprint_len >>
            e.updated_unix >> input >> path) ||
          !decode(input, &e.input) || !decode(path, &e.path)) {
        return corrupt(n, "bad file record");
      }
      e.identity.fingerprint = std::strtoull(fp.c_str(), nullptr, 16);
      auto key = std::make_pair(e.identity.dev, e.identity.ino);
      current = &(out[key] = std::move(e));
    } else if (tag == "s") {
      std::string sink;
      uint64_t off = 0;
      std::string decoded;
      if (!current || !(fields >> sink >> off) || !decode(sink, &decoded)) {
        return corrupt(n, "bad sink record");
      }
      current->offsets[decoded] = off;
    } else {
      return corrupt(n, "unknown record '" + tag + "'");
    }
  }
  if (out.size() != count) return corrupt(n, "entry count mismatch");
  return out;
}

sys::Error CheckpointStore::load() {
  entries_.clear();
  sys::UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return sys::Error::ok();
    return sys::Error::fromErrno(errno, "checkpoint file " + path_);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return sys::Error::fromErrno(errno, "read " + path_);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  auto parsed = parse(text, path_);
  if (!parsed.ok()) return parsed.error();
  entries_ = std::move(parsed.value());
  return sys::Error::ok();
}

const CheckpointEntry* CheckpointStore::find(uint64_t dev, uint64_t ino) const {
  auto it = entries_.find({dev, ino});
  return it == entries_.end() ? nullptr : &it->second;
}

void CheckpointStore::put(CheckpointEntry entry) {
  auto key = std::make_pair(entry.identity.dev, entry.identity.ino);
  entries_[key] = std::move(entry);
  dirty_ = true;
}

void CheckpointStore::forget(uint64_t dev, uint64_t ino) {
  if (entries_.erase({dev, ino}) > 0) dirty_ = true;
}

std::vector<inputs::KnownFile> CheckpointStore::knownFiles(const std::string& input) const {
  std::vector<inputs::KnownFile> out;
  for (const auto& [key, e] : entries_) {
    if (e.input == input) out.push_back({e.path, e.identity});
  }
  return out;
}

size_t CheckpointStore::expire(int64_t older_than_unix) {
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.updated_unix < older_than_unix) {
      it = entries_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  if (n) dirty_ = true;
  return n;
}

sys::Error CheckpointStore::flush() {
  if (!dirty_) return sys::Error::ok();
  auto started = std::chrono::steady_clock::now();
  std::string text = serialize();
  std::string tmp = path_ + ".tmp";
  sys::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return sys::Error::fromErrno(errno, "write checkpoint " + tmp);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return sys::Error::fromErrno(err, "write checkpoint " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  auto fail = [&](int err, const std::string& what) {
    ::unlink(tmp.c_str());  // never leave a half-written temp file behind
    return sys::Error::fromErrno(err, what + " " + tmp);
  };
  if (::fsync(fd.get()) != 0) return fail(errno, "fsync");
  if (auto err = fd.close()) return fail(err.sysErrno(), "close");
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return fail(errno, "rename");
  if (auto err = fsyncDir(dir_)) return err;
  dirty_ = false;
  ++writes_;
  last_write_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return sys::Error::ok();
}

void CheckpointStore::collectMetrics(sys::MetricWriter& out) const {
  out.counter("logsplice_checkpoint_writes_total", "Checkpoint files written.", {},
              static_cast<double>(writes_));
  out.gauge("logsplice_checkpoint_last_write_seconds",
            "Time the last checkpoint write took, fsyncs included.", {}, last_write_seconds_);
  out.gauge("logsplice_checkpoint_entries", "Files the checkpoint file knows.", {},
            static_cast<double>(entries_.size()));
}

}  // namespace logsplice::agent
