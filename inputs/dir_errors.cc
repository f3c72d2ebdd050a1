#include "inputs/dir_errors.h"

#include <sys/stat.h>

#include <cstring>

#include <spdlog/spdlog.h>

namespace logsplice::inputs {

void DirErrors::beginScan() {
  seen_.clear();
}

void DirErrors::note(const std::string& dir, int err) {
  seen_[dir] = err;
  auto it = dirs_.find(dir);
  if (it != dirs_.end() && it->second == err) return;
  dirs_[dir] = err;
  ++errors_total_;
  spdlog::warn(
      "input '{}': cannot list directory {}: {}; files in it are not followed (retrying at "
      "every rescan)",
      input_name_, dir, std::strerror(err));
}

void DirErrors::endScan() {
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (seen_.count(it->first) != 0) {
      ++it;
      continue;
    }
    struct stat st;
    if (::stat(it->first.c_str(), &st) == 0) {
      spdlog::info("input '{}': directory {} can be listed again; following its files", input_name_,
                   it->first);
    } else {
      spdlog::info("input '{}': directory {} (unreadable before) is gone", input_name_, it->first);
    }
    it = dirs_.erase(it);
  }
  seen_.clear();
}

std::vector<UnreadableDir> DirErrors::list() const {
  std::vector<UnreadableDir> out;
  out.reserve(dirs_.size());
  for (const auto& [path, err] : dirs_) out.push_back({path, err, std::strerror(err)});
  return out;
}

}  // namespace logsplice::inputs
