#include "agent/fill_job.h"

#include <algorithm>
#include <vector>

#include "sys/splice.h"
#include "inputs/line_end.h"

namespace logsplice::agent {
namespace {

bool writeNewline(sys::SysCalls& sys, FillTarget& t) {
  auto r = sys.write(t.pipe_wr, "\n", 1);
  if (r.failed() || r.value != 1) return false;
  sys::CopyCounter::add(1);  // the one byte we make up ourselves
  t.copied += 1;
  return true;
}

constexpr uint32_t kLineEndWindow = 1024;

// Splices [*off, end) from the file into one pipe, `chunk` bytes per call, until done, the pipe
// is full, or EOF.
void spliceInto(sys::SysCalls& sys, FillJob& job, int pipe_wr, uint64_t* off, uint64_t end) {
  while (*off < end) {
    uint64_t piece = std::min(end - *off, job.chunk);
    auto r = sys::spliceFileToPipe(sys, job.fd->get(), off, pipe_wr, piece);
    if (r.ok() && r.value() > 0) continue;
    if (!r.ok()) {
      if (r.error().code() == sys::ErrorCode::kUnsupported) {
        job.unsupported = true;
      } else if (r.error().code() != sys::ErrorCode::kWouldBlock) {
        job.error = r.error();
      }
    }
    return;  // full pipe, EOF (file shrank), or an error
  }
}

// The copy path: pread into a buffer, write to each target. Every byte is counted.
void copyInto(sys::SysCalls& sys, FillJob& job, std::vector<FillTarget*>& targets, uint64_t end) {
  std::vector<char> buf(std::min<uint64_t>(end - job.offset, 64 * 1024));
  uint64_t off = job.offset;
  while (off < end && !targets.empty()) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
    auto r = sys.pread(job.fd->get(), buf.data(), want, static_cast<off_t>(off));
    if (r.failed()) {
      job.error = sys::Error::fromErrno(r.err, "pread");
      return;
    }
    if (r.value == 0) return;
    size_t n = static_cast<size_t>(r.value);
    // Every target must take all n bytes or drop out (a pipe write of <= PIPE_BUF... is not
    // guaranteed for n, so a short write ends that target's share here).
    for (auto it = targets.begin(); it != targets.end();) {
      auto w = sys.write((*it)->pipe_wr, buf.data(), n);
      size_t written = w.failed() ? 0 : static_cast<size_t>(w.value);
      (*it)->moved += written;
      // Counted once per target: each pipe's copy of the bytes went through our memory (one
      // pread, then one write per target), so the global counter is the sum over the sinks.
      sys::CopyCounter::add(written);
      (*it)->copied += written;
      it = written == n ? it + 1 : targets.erase(it);
    }
    off += n;
  }
}

// Lockstep: each piece is read from the file once (into `src`), tee'd to every member but the
// last and spliced into the last. Members that come up short keep what they got and leave.
void lockstepInto(sys::SysCalls& sys, FillJob& job, std::vector<FillTarget*> group, uint64_t end,
                  sys::Pipe& src, int dev_null) {
  uint64_t base = job.offset;
  while (base < end && group.size() >= 2 && !job.unsupported && !job.error) {
    uint64_t piece_end = std::min(end, base + job.chunk);
    uint64_t off = base;
    spliceInto(sys, job, src.writeFd(), &off, piece_end);
    uint64_t n = off - base;
    if (n == 0) break;
    std::vector<uint64_t> got(group.size(), 0);
    for (size_t i = 0; i + 1 < group.size(); ++i) {
      auto r = sys::teePipe(sys, src.readFd(), group[i]->pipe_wr, n);
      got[i] = r.ok() ? r.value() : 0;
    }
    uint64_t& last = got.back();
    while (last < n) {
      auto r =
          sys::splicePipeToFd(sys, src.readFd(), group.back()->pipe_wr, nullptr, n - last, false);
      if (!r.ok() || r.value() == 0) break;
      last += r.value();
    }
    // What the last member could not take is dropped from the source pipe; that sink catches
    // up from the file at its own offset.
    for (uint64_t left = n - last; left > 0;) {
      auto r = sys::splicePipeToFd(sys, src.readFd(), dev_null, nullptr, left, false);
      if (!r.ok() || r.value() == 0) break;
      left -= r.value();
    }
    std::vector<FillTarget*> still;
    for (size_t i = 0; i < group.size(); ++i) {
      group[i]->moved += got[i];
      if (got[i] == n) still.push_back(group[i]);
    }
    group.swap(still);
    base += n;
    if (base < piece_end) break;  // the file ended early (truncated): stop here
  }
  if (group.size() == 1 && base < end && !job.unsupported && !job.error) {
    uint64_t off = base;
    spliceInto(sys, job, group.front()->pipe_wr, &off, end);
    group.front()->moved += off - base;
  }
}

}  // namespace

void executeFill(sys::SysCalls& sys, FillJob& job, sys::Pipe& src, int dev_null) {
  std::vector<FillTarget*> active;
  for (FillTarget& t : job.targets) {
    if (t.newline_first) {
      t.newline_first_written = writeNewline(sys, t);
      if (!t.newline_first_written) continue;  // pipe full: nothing more for this one now
    }
    active.push_back(&t);
  }

  uint64_t end = std::min(job.offset + job.max_len, job.limit_end);
  bool boundary = end == job.limit_end;
  if (!boundary && end > job.offset) {
    auto le = inputs::findLastLineEnd(sys, job.fd->get(), job.offset, end, kLineEndWindow);
    if (le.ok() && le.value() > job.offset) {
      end = le.value();
      boundary = true;
    }  // else: one line longer than the chunk; ship a piece and stay on this file
  }
  job.planned_end = end;
  job.planned_at_boundary = boundary;
  uint64_t len = end - job.offset;

  if (len > 0 && !active.empty()) {
    if (job.copy_mode) {
      std::vector<FillTarget*> copy_targets = active;
      copyInto(sys, job, copy_targets, end);
    } else if (active.size() == 1 || !job.lockstep) {
      for (FillTarget* t : active) {
        uint64_t off = job.offset;
        spliceInto(sys, job, t->pipe_wr, &off, end);
        t->moved = off - job.offset;
        if (job.unsupported || job.error) break;
      }
    } else {
      lockstepInto(sys, job, active, end, src, dev_null);
    }
  }

  if (job.limit_is_break && end == job.limit_end) {
    for (FillTarget* t : active) {
      if (t->moved == len) t->newline_after = writeNewline(sys, *t);
    }
  }
}

}  // namespace logsplice::agent
