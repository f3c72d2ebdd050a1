#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "sys/error.h"

namespace logsplice::inputs {

// Who a file is, independent of its name: (st_dev, st_ino) plus a fingerprint (64-bit hash) of
// its first bytes, so that an inode number reused after a delete is a different file. Until the
// file holds kFingerprintBytes the fingerprint covers what it has (fingerprint_len < full);
// `matches` then compares the common prefix by re-hashing.
struct FileIdentity {
  static constexpr uint32_t kFingerprintBytes = 1024;

  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t fingerprint = 0;
  uint32_t fingerprint_len = 0;

  bool sameInode(const FileIdentity& o) const { return dev == o.dev && ino == o.ino; }
  std::string toString() const;  // "dev:ino:fingerprint/len", also the checkpoint key
};

// Hashes up to kFingerprintBytes from the start of fd (pread). Thread-safe.
sys::Result<FileIdentity> identify(int fd, const struct stat& st);

// Whether `fd` (with its stat) is still the file `known` describes: same inode, and the first
// known.fingerprint_len bytes hash to known.fingerprint. A shorter file than
// known.fingerprint_len is not the same file (it was truncated or replaced).
sys::Result<bool> stillMatches(int fd, const struct stat& st, const FileIdentity& known);

// One read of the head answering both questions above: whether the file still matches `known`
// (same inode, same first known.fingerprint_len bytes), and its identity at the current size.
// The follower calls it on every growth: a file below kFingerprintBytes gets a longer
// fingerprint, and a head that changed under the same inode means it was truncated and
// rewritten. Thread-safe.
struct HeadCheck {
  bool matches = false;
  FileIdentity current;
};
sys::Result<HeadCheck> checkHead(int fd, const struct stat& st, const FileIdentity& known);

// The fingerprint hash (64-bit FNV-1a) of `len` bytes; exposed for tests.
uint64_t fingerprintOf(const char* data, size_t len);

}  // namespace logsplice::inputs
