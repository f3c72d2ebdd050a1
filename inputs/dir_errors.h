#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace logsplice::inputs {

// A directory of an input's globs that exists but cannot be listed.
struct UnreadableDir {
  std::string path;
  int err = 0;
  std::string reason;  // strerror(err)
};

// The directories one input cannot list (EACCES: a 0700 directory of another user...): without
// this the agent would ship nothing from them and say nothing. Each is warned about once, with
// the path and the reason, and counted; every full scan retries it, and it is forgotten (with
// one log line) once a scan lists it again or it is no longer there. Loop thread only.
class DirErrors {
 public:
  explicit DirErrors(std::string input_name) : input_name_(std::move(input_name)) {}

  // A full scan starts / met an unlistable directory / ended (complete: every directory it
  // should list was tried).
  void beginScan();
  void note(const std::string& dir, int err);
  void endScan();

  size_t size() const { return dirs_.size(); }
  // Errors met: a directory counted once per episode of being unreadable.
  uint64_t errorsTotal() const { return errors_total_; }
  std::vector<UnreadableDir> list() const;

 private:
  std::string input_name_;
  std::map<std::string, int> dirs_;  // path -> errno, warned about
  std::map<std::string, int> seen_;  // met by the scan in progress
  uint64_t errors_total_ = 0;
};

}  // namespace logsplice::inputs
