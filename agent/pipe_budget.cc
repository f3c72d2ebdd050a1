#include "agent/pipe_budget.h"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace logsplice::agent {

void PipeBudget::add(const outputs::Sink& sink) {
  size_t got = sink.pipe().capacity();
  if (got < asked_) {
    spdlog::warn(
        "output '{}': its pipe holds {} bytes, not the {} asked (pipe-max-size or the "
        "per-user pipe budget); it still works, with smaller fills",
        sink.name(), got, asked_);
  }
  total_ += got;
  static const uint64_t soft_limit = [] {
    uint64_t pages = 0;
    if (FILE* f = std::fopen("/proc/sys/fs/pipe-user-pages-soft", "r")) {
      if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    return pages * 4096;
  }();
  if (soft_limit > 0 && total_ > soft_limit / 2 && !warned_) {
    warned_ = true;
    spdlog::warn(
        "pipes take {} bytes, over half of pipe-user-pages-soft ({} bytes) for this "
        "user: lower agent.pipe_bytes or raise fs.pipe-user-pages-soft",
        total_, soft_limit);
  }
}

}  // namespace logsplice::agent
