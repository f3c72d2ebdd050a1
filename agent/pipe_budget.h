#pragma once

#include <cstddef>
#include <cstdint>

#include "outputs/sink.h"

namespace logsplice::agent {

// Pipe memory is a per-user budget (pipe-user-pages-soft); past it the kernel silently hands out
// 8 KiB pipes (docs/design.md K3). Counts what the sinks' pipes take and warns once a pipe is
// smaller than asked, and once they take over half the budget.
class PipeBudget {
 public:
  explicit PipeBudget(size_t asked) : asked_(asked) {}
  // A sink just started: its pipe's capacity was read back with F_GETPIPE_SZ.
  void add(const outputs::Sink& sink);

 private:
  size_t asked_;
  uint64_t total_ = 0;  // sink pipes (plus two source pipes, not counted)
  bool warned_ = false;
};

}  // namespace logsplice::agent
