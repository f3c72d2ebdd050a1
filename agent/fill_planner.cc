#include "agent/fill_planner.h"

#include <sys/uio.h>

#include <algorithm>
#include <map>

namespace logsplice::agent {
namespace {

// Bytes appended less than this long ago are taken as cached without asking.
constexpr uint64_t kFreshMs = 5000;

bool isLive(const inputs::Follower* f) {
  return f && f->state() == inputs::Follower::State::kLive;
}

}  // namespace

bool FillPlanner::wantsBytes(const FileRoute& fs, const Cursor& c) {
  if (!fs.follower) return false;
  return c.cursor < fs.follower->completeEnd() || c.newline_owed;
}

void FillPlanner::refreshPending(uint64_t file_id, FileRoute& fs) {
  fs.forEachCursor([&](uint32_t sink_id, const Cursor& c) {
    SinkSlot* slot = table_.slot(sink_id);
    if (!slot) return;
    if (wantsBytes(fs, c)) {
      slot->pending.insert(file_id);
    } else {
      slot->pending.erase(file_id);
    }
  });
}

uint64_t FillPlanner::pickFile(SinkSlot& slot) {
  if (slot.bound_file && slot.pending.count(slot.bound_file)) return slot.bound_file;
  slot.bound_file = 0;
  // Rotated and deleted files first (oldest first), so a file is finished before its successor.
  for (uint64_t id : slot.pending) {
    const FileRoute* fs = table_.file(id);
    if (fs && !isLive(fs->follower)) return id;
  }
  // Round robin among live files.
  auto next = slot.pending.upper_bound(slot.last_served);
  if (next == slot.pending.end()) next = slot.pending.begin();
  return next == slot.pending.end() ? 0 : *next;
}

uint64_t FillPlanner::wantedRoom(const outputs::Sink& sink) const {
  // Room for a chunk, or for a quarter of the pipe when the pipe is small (pipe_bytes below
  // chunk_bytes, or past pipe-user-pages-soft new pipes get 8 KiB).
  return std::max<uint64_t>(std::min<uint64_t>(cfg_.chunk_bytes, sink.pipe().capacity() / 4), 1);
}

std::vector<FillPlanner::Fill> FillPlanner::plan() {
  // Which file each idle sink with room should be fed from.
  std::map<uint64_t, std::vector<uint32_t>> wants;
  uint64_t now_ms = clock_.monotonicMs();
  table_.forEachSink([&](uint32_t sink_id, SinkSlot& slot) {
    if (slot.filling || slot.removing || slot.wait_for_drain || slot.pending.empty()) return;
    if (!slot.sink->acceptsData(wantedRoom(*slot.sink))) return;
    uint64_t id = pickFile(slot);
    if (id == 0) return;
    const FileRoute* fs = table_.file(id);
    if (!fs || !fs->follower || fs->follower->fd() < 0) {
      slot.pending.erase(id);
      return;
    }
    if (fs->retry_at_ms > now_ms) return;
    wants[id].push_back(sink_id);
  });
  std::vector<Fill> fills;
  for (auto& [id, sinks] : wants) {
    const FileRoute& fs = *table_.file(id);
    if (!cfg_.lockstep) {
      for (uint32_t s : sinks) fills.push_back({id, {s}});
      continue;
    }
    // Group the sinks that stand at the same offset (lockstep).
    std::map<uint64_t, std::vector<uint32_t>> groups;
    for (uint32_t s : sinks) groups[fs.cursor(s)->cursor].push_back(s);
    for (auto& [offset, group] : groups) fills.push_back({id, std::move(group)});
  }
  return fills;
}

std::unique_ptr<FillJob> FillPlanner::buildJob(FileRoute& fs, uint64_t file_id,
                                               const std::vector<uint32_t>& sinks) {
  const inputs::Follower& f = *fs.follower;
  const Cursor& first = *fs.cursor(sinks.front());
  auto job = std::make_unique<FillJob>();
  job->file_id = file_id;
  job->generation = fs.generation;
  job->fd = f.sharedFd();
  job->offset = first.cursor;
  job->limit_end = f.completeEnd();
  auto brk = f.breaks().upper_bound(first.cursor);
  if (brk != f.breaks().end() && *brk <= job->limit_end) {
    job->limit_end = *brk;
    job->limit_is_break = true;
  }
  job->chunk = cfg_.chunk_bytes;
  job->max_len = UINT64_MAX;
  for (uint32_t s : sinks) job->max_len = std::min(job->max_len, table_.slot(s)->sink->room());
  // Pipes count slots, not bytes (docs/design.md K3): a 64 KiB piece at an unaligned offset takes
  // 17 page slots, so a pipe "with room for" 256 KiB takes only ~240 KiB of file pages. Leave an
  // eighth spare so the last piece is not cut short (which would demote a lockstep member).
  job->max_len -= job->max_len / 8;
  job->copy_mode = fs.copy_mode;
  job->lockstep = cfg_.lockstep;
  for (uint32_t s : sinks) {
    SinkSlot& slot = *table_.slot(s);
    FillTarget t;
    t.sink = s;
    t.pipe_wr = slot.sink->pipe().writeFd();
    t.sink_epoch = slot.sink->epoch();
    t.newline_first = fs.cursor(s)->newline_owed;
    job->targets.push_back(t);
    slot.filling = true;
    slot.last_served = file_id;
  }
  return job;
}

bool FillPlanner::residentNow(int fd, uint64_t offset) const {
  // EAGAIN from RWF_NOWAIT: the page is not cached. One byte is read and thrown away; it is not
  // shipped, so it is not a copy.
  char byte;
  sys::SysResult r = sys_.preadv2(fd, &byte, 1, static_cast<off_t>(offset), RWF_NOWAIT);
  return !r.failed() || r.err != EAGAIN;
}

bool FillPlanner::cached(const FillJob& job, const inputs::Follower& f) const {
  // Splicing from the page cache does not block; reading from disk does (even with
  // SPLICE_F_NONBLOCK, docs/design.md K4). Predict residency with a 1-byte RWF_NOWAIT read at
  // both ends of the range: fresh appends and a cached catch-up run on the loop without a
  // thread round trip, anything cold goes to the I/O thread.
  // Bytes appended since the file's previous refresh, seconds ago at most, need no probe: they
  // were just written, and dirty pages stay cached until written back.
  uint64_t last = std::min(job.offset + job.max_len, job.limit_end);
  if (last <= job.offset) return false;
  bool fresh = job.offset >= f.freshFrom() && clock_.monotonicMs() - f.lastChangeMs() < kFreshMs;
  return fresh || (residentNow(f.fd(), job.offset) && residentNow(f.fd(), last - 1));
}

}  // namespace logsplice::agent
