#include "inputs/file_identity.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace logsplice::inputs {
namespace {

// FNV-1a, 64-bit: simple, dependency-free and good enough to tell two log heads apart. The
// fingerprint is not a security boundary.
constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t fnv1a(const char* data, size_t len) {
  uint64_t h = kFnvOffset;
  for (size_t i = 0; i < len; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= kFnvPrime;
  }
  return h;
}

// Reads up to `want` bytes from offset 0; fewer when the file is shorter (or shrinks meanwhile).
sys::Result<size_t> readHead(int fd, char* buf, size_t want) {
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd, buf + got, want - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::Error::fromErrno(errno, "pread head");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

std::string FileIdentity::toString() const {
  return std::to_string(dev) + ":" + std::to_string(ino) + ":" + std::to_string(fingerprint) + "/" +
         std::to_string(fingerprint_len);
}

uint64_t fingerprintOf(const char* data, size_t len) {
  return fnv1a(data, len);
}

sys::Result<FileIdentity> identify(int fd, const struct stat& st) {
  auto head = checkHead(fd, st, FileIdentity{});
  if (!head.ok()) return head.error();
  return head->current;
}

sys::Result<bool> stillMatches(int fd, const struct stat& st, const FileIdentity& known) {
  auto head = checkHead(fd, st, known);
  if (!head.ok()) return head.error();
  return head->matches;
}

sys::Result<HeadCheck> checkHead(int fd, const struct stat& st, const FileIdentity& known) {
  char buf[FileIdentity::kFingerprintBytes];
  uint64_t size = st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  size_t want = static_cast<size_t>(std::min<uint64_t>(size, FileIdentity::kFingerprintBytes));
  auto got = readHead(fd, buf, want);
  if (!got.ok()) return got.error();

  HeadCheck out;
  out.current.dev = static_cast<uint64_t>(st.st_dev);
  out.current.ino = static_cast<uint64_t>(st.st_ino);
  out.current.fingerprint_len = static_cast<uint32_t>(*got);
  out.current.fingerprint = fnv1a(buf, *got);
  // Usually the known fingerprint covers as much as was read: one hash serves both.
  out.matches =
      out.current.sameInode(known) && known.fingerprint_len <= *got &&
      (known.fingerprint_len == *got ? out.current.fingerprint
                                     : fnv1a(buf, known.fingerprint_len)) == known.fingerprint;
  return out;
}

}  // namespace logsplice::inputs
