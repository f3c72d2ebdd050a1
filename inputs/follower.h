#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "agent/sys/unique_fd.h"
#include "config/config.h"
#include "inputs/file_identity.h"

namespace logsplice::inputs {

// One followed file: its open fd, identity, size and the end of its last complete line.
// Lives on the loop thread. The fd is shared (shared_ptr) so that a splice running on the I/O
// thread keeps it open even if the follower closes meanwhile.
//
// State machine: kLive (the configured path names this file) -> kRotated (the path now names
// another file or nothing, the fd is read to its end) or kDeleted (st_nlink == 0, drained from
// the fd). Truncation (size < last seen size) bumps generation() and keeps the state.
class Follower {
 public:
  enum class State { kLive, kRotated, kDeleted };

  // Public surface used by the router; the constructor/refresh API is the inputs' own.
  uint64_t id() const { return id_; }  // unique in this process, never reused
  const std::string& path() const { return path_; }
  const std::string& inputName() const { return input_name_; }
  const FileIdentity& identity() const { return identity_; }
  // -1 while suspended (drained and closed to save fds); the shared owner keeps it open for
  // jobs in flight.
  int fd() const { return fd_ ? fd_->get() : -1; }
  std::shared_ptr<const sys::UniqueFd> sharedFd() const { return fd_; }
  uint64_t size() const { return size_; }
  // Shippable bytes end here: past the last newline, or at a forced break.
  uint64_t completeEnd() const { return complete_end_; }
  // Offsets at which the router inserts a '\n' after the bytes before them: pieces of a line
  // longer than max_line_bytes, or a final line without newline once the file is rotated,
  // deleted or idle for partial_line_timeout. Sorted; pruned below every cursor.
  const std::set<uint64_t>& breaks() const { return breaks_; }
  void pruneBreaksBelow(uint64_t offset) { breaks_.erase(breaks_.begin(), breaks_.lower_bound(offset)); }
  uint64_t generation() const { return generation_; }
  State state() const { return state_; }
  // Whether the input wants the read/write copy path (input option `copy`).
  bool copyMode() const { return copy_mode_; }

 protected:
  Follower() = default;

  uint64_t id_ = 0;
  std::string path_;
  std::string input_name_;
  FileIdentity identity_;
  std::shared_ptr<sys::UniqueFd> fd_;
  uint64_t size_ = 0;
  uint64_t complete_end_ = 0;
  std::set<uint64_t> breaks_;
  uint64_t generation_ = 0;
  State state_ = State::kLive;
  bool copy_mode_ = false;
};

}  // namespace logsplice::inputs
