#include "agent/router.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "inputs/line_end.h"
#include "sys/assert.h"

namespace logsplice::agent {
namespace {

std::string baseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Whether the page holding `offset` is in the page cache now (EAGAIN from RWF_NOWAIT: it is
// not). One byte is read and thrown away; it is not shipped, so it is not a copy.
bool residentNow(int fd, uint64_t offset) {
  char byte;
  struct iovec v {
    &byte, 1
  };
  ssize_t r = ::preadv2(fd, &v, 1, static_cast<off_t>(offset), RWF_NOWAIT);
  return r >= 0 || errno != EAGAIN;
}

constexpr uint64_t kFreshMs = 5000;
constexpr int64_t kRefreshEntrySeconds = 3600;
constexpr int64_t kExpireEntrySeconds = 24 * 3600;

bool isLive(const inputs::Follower* f) {
  return f && f->live();  // kLive, or kSuspended (still its name, fd closed)
}

}  // namespace

Router::Router(uv_loop_t* loop, const config::AgentConfig& cfg, CheckpointStore& store)
    : loop_(loop),
      cfg_(cfg),
      store_(store),
      io_(loop, [this](std::unique_ptr<FillJob> job) { onFillDone(std::move(job)); }) {
  LS_CHECK_UV(poke_timer_.init(uv_timer_init, loop_, this));
  LS_CHECK_UV(sched_timer_.init(uv_timer_init, loop_, this));
}

Router::~Router() {
  stop();
}

sys::Error Router::start() {
  auto src = sys::Pipe::create(cfg_.pipe_bytes);
  if (!src.ok()) return src.error();
  loop_src_ = std::move(src.value());
  dev_null_.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!dev_null_) return sys::Error::fromErrno(errno, "/dev/null");
  return io_.start(cfg_.pipe_bytes);
}

void Router::stop() {
  poke_timer_.close();
  sched_timer_.close();
  filling_ = false;  // fills coming back unrun must not queue new ones on a stopped thread
  io_.stop();
  io_.close();
}

sys::Error Router::addSink(std::unique_ptr<outputs::Sink> sink, std::vector<std::string> inputs) {
  std::string name = sink->name();
  SinkSlot& slot = sinks_[name];
  slot.sink = std::move(sink);
  slot.inputs.insert(inputs.begin(), inputs.end());
  if (auto err = slot.sink->start()) return err;
  checkPipeBudget(*slot.sink);
  return sys::Error::ok();
}

void Router::checkPipeBudget(const outputs::Sink& sink) {
  // Pipe memory is a per-user budget (pipe-user-pages-soft); past it the kernel silently hands
  // out 8 KiB pipes (docs/design.md K3). The capacity was read back with F_GETPIPE_SZ.
  size_t got = sink.pipe().capacity();
  if (got < cfg_.pipe_bytes) {
    spdlog::warn(
        "output '{}': its pipe holds {} bytes, not the {} asked (pipe-max-size or the "
        "per-user pipe budget); it still works, with smaller fills",
        sink.name(), got, cfg_.pipe_bytes);
  }
  pipe_bytes_total_ += got;
  static const uint64_t soft_limit = [] {
    uint64_t pages = 0;
    if (FILE* f = std::fopen("/proc/sys/fs/pipe-user-pages-soft", "r")) {
      if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    return pages * 4096;
  }();
  if (soft_limit > 0 && pipe_bytes_total_ > soft_limit / 2 && !pipe_budget_warned_) {
    pipe_budget_warned_ = true;
    spdlog::warn(
        "pipes take {} bytes, over half of pipe-user-pages-soft ({} bytes) for this "
        "user: lower agent.pipe_bytes or raise fs.pipe-user-pages-soft",
        pipe_bytes_total_, soft_limit);
  }
}

sys::Error Router::addSinkLive(std::unique_ptr<outputs::Sink> sink,
                               std::vector<std::string> inputs) {
  std::string name = sink->name();
  std::set<std::string> routed(inputs.begin(), inputs.end());
  for (auto& [id, fs] : files_) {
    if (!fs.follower || !routed.count(fs.input)) continue;
    Cursor c;
    c.cursor = fs.follower->completeEnd();
    const CheckpointEntry* saved = store_.find(fs.identity.dev, fs.identity.ino);
    if (saved && saved->offsets.count(name) && saved->offsets.at(name) <= fs.follower->size()) {
      c.cursor = lineStartAtOrBefore(fs, saved->offsets.at(name));
    }
    c.delivered = c.cursor;
    fs.cursors[name] = c;
    fs.dirty = true;
  }
  if (auto err = addSink(std::move(sink), std::move(inputs))) return err;
  for (auto& [id, fs] : files_) refreshPending(id, fs);
  schedule();
  return sys::Error::ok();
}

void Router::removeSink(const std::string& name) {
  auto it = sinks_.find(name);
  if (it == sinks_.end()) return;
  checkpoint();  // what it delivered so far stays in the store
  it->second.removing = true;
  it->second.pending.clear();
  it->second.sink->stop();
  if (!it->second.filling) eraseSink(name);
}

void Router::eraseSink(const std::string& name) {
  auto it = sinks_.find(name);
  if (it == sinks_.end()) return;
  it->second.sink->close(nullptr);
  sinks_.erase(it);
  for (auto& [id, fs] : files_) fs.cursors.erase(name);
}

outputs::Sink* Router::sink(const std::string& name) {
  auto it = sinks_.find(name);
  return it == sinks_.end() ? nullptr : it->second.sink.get();
}

std::vector<outputs::Sink*> Router::sinks() const {
  std::vector<outputs::Sink*> out;
  for (auto& [name, slot] : sinks_) out.push_back(slot.sink.get());
  return out;
}

bool Router::wantsBytes(const FileState& fs, const Cursor& c) const {
  if (!fs.follower) return false;
  return c.cursor < fs.follower->completeEnd() || c.newline_owed;
}

void Router::refreshPending(uint64_t file_id, FileState& fs) {
  for (auto& [sink_name, c] : fs.cursors) {
    SinkSlot& slot = sinks_[sink_name];
    if (wantsBytes(fs, c)) {
      slot.pending.insert(file_id);
    } else {
      slot.pending.erase(file_id);
    }
  }
}

uint64_t Router::lineStartAtOrBefore(const FileState& fs, uint64_t offset) const {
  if (offset == 0 || !fs.follower || fs.follower->fd() < 0) return offset;
  // The start of the line holding `offset`: just past the last '\n' before it.
  auto r = inputs::findLastLineEnd(sys::SysCalls::real(), fs.follower->fd(), 0, offset);
  if (!r.ok()) return offset;
  // A forced break is a line start too (the router added the '\n' there).
  const auto& breaks = fs.follower->breaks();
  auto it = breaks.upper_bound(offset);
  uint64_t start = r.value();
  if (it != breaks.begin()) start = std::max(start, *std::prev(it));
  return start;
}

// ---- inputs::FileObserver ----

void Router::fileOpened(inputs::Follower& f, uint64_t default_start) {
  FileState fs;
  fs.follower = &f;
  fs.input = f.inputName();
  fs.path = f.path();
  fs.source_name = baseName(f.path());
  fs.source = std::make_shared<const outputs::SourceInfo>(
      outputs::SourceInfo{fs.input, fs.path, fs.source_name});
  fs.identity = f.identity();
  fs.generation = f.generation();
  fs.copy_mode = f.copyMode();
  const CheckpointEntry* saved = store_.find(f.identity().dev, f.identity().ino);
  bool resume = false;
  if (saved && f.fd() >= 0) {
    struct stat st {};
    if (::fstat(f.fd(), &st) == 0) {
      auto same = inputs::stillMatches(f.fd(), st, saved->identity);
      resume = same.ok() && same.value();
    }
  }
  auto [it, inserted] = files_.emplace(f.id(), std::move(fs));
  FileState& state = it->second;
  for (auto& [name, slot] : sinks_) {
    if (slot.removing || !slot.inputs.count(state.input)) continue;
    Cursor c;
    c.cursor = default_start;
    if (resume) {
      auto off = saved->offsets.find(name);
      if (off != saved->offsets.end()) {
        // Past the end means the file was truncated while we were away: start over.
        c.cursor = off->second <= f.size() ? lineStartAtOrBefore(state, off->second) : 0;
      } else {
        c.cursor = 0;  // a sink added since the checkpoint: it gets the whole file
      }
    }
    c.delivered = c.cursor;
    state.cursors[name] = c;
  }
  spdlog::debug("following {} (id {}, {} sinks{})", f.path(), f.id(), state.cursors.size(),
                resume ? ", resumed from checkpoint" : "");
  refreshPending(f.id(), state);
  if (on_new_file_) on_new_file_();
  scheduleSoon();
}

void Router::fileGrew(inputs::Follower& f) {
  auto it = files_.find(f.id());
  if (it == files_.end()) return;
  refreshPending(f.id(), it->second);
  scheduleSoon();
}

void Router::fileTruncated(inputs::Follower& f) {
  auto it = files_.find(f.id());
  if (it == files_.end()) return;
  FileState& fs = it->second;
  fs.generation = f.generation();
  fs.identity = f.identity();
  for (auto& [name, c] : fs.cursors) {
    c = Cursor{};
    SinkSlot& slot = sinks_[name];
    if (slot.bound_file == f.id()) slot.bound_file = 0;
  }
  fs.dirty = true;
  refreshPending(f.id(), fs);
  scheduleSoon();
}

bool Router::fileDrained(const inputs::Follower& f) const {
  auto it = files_.find(f.id());
  if (it == files_.end()) return true;
  const FileState& fs = it->second;
  if (fs.fills_in_flight > 0) return false;
  for (const auto& [name, c] : fs.cursors) {
    if (c.newline_owed || c.cursor < f.completeEnd() || c.delivered < f.completeEnd()) return false;
  }
  return true;
}

void Router::fileClosing(inputs::Follower& f) {
  auto it = files_.find(f.id());
  if (it == files_.end()) return;
  FileState& fs = it->second;
  for (auto& [name, c] : fs.cursors) {
    SinkSlot& slot = sinks_[name];
    slot.pending.erase(f.id());
    if (slot.bound_file == f.id()) slot.bound_file = 0;
    if (shutting_down_ || detached_inputs_.count(fs.input)) continue;
    uint64_t end = std::max(f.size(), f.completeEnd());
    if (c.delivered < end) {
      uint64_t missed = end - c.delivered;
      slot.sink->mutableStats().missed_bytes += missed;
      spdlog::warn("output '{}': {} released before it was delivered: {} bytes missed", name,
                   f.path(), missed);
    }
  }
  if (!shutting_down_ && !detached_inputs_.count(fs.input)) {
    store_.forget(fs.identity.dev, fs.identity.ino);
  } else if (fs.dirty) {
    // Keep what was delivered up to now: the input comes back (reload) or the agent restarts.
    store_.put(entryFor(fs, f, std::time(nullptr)));
  }
  if (fs.fills_in_flight > 0) {
    fs.follower = nullptr;  // erased when the last fill comes back
  } else {
    files_.erase(it);
  }
}

// ---- outputs::SinkListener ----

void Router::sinkDelivered(outputs::Sink& s, uint64_t file_id, uint64_t generation,
                           uint64_t offset_end) {
  const std::string& sink = s.name();
  auto it = files_.find(file_id);
  if (it == files_.end() || it->second.generation != generation) return;
  FileState& fs = it->second;
  auto c = fs.cursors.find(sink);
  if (c == fs.cursors.end() || offset_end <= c->second.delivered) return;
  c->second.delivered = offset_end;
  fs.dirty = true;
  maybePoke(fs);
}

void Router::sinkReady(outputs::Sink& s) {
  const std::string& sink = s.name();
  auto it = sinks_.find(sink);
  if (it != sinks_.end()) it->second.wait_for_drain = false;
  schedule();
}

void Router::sinkRewound(outputs::Sink& s, const std::vector<Rewind>& rewinds) {
  const std::string& sink = s.name();
  SinkSlot& slot = sinks_[sink];
  slot.bound_file = 0;
  slot.wait_for_drain = false;
  for (const Rewind& r : rewinds) {
    auto it = files_.find(r.file_id);
    if (it == files_.end() || it->second.generation != r.generation) continue;
    FileState& fs = it->second;
    auto c = fs.cursors.find(sink);
    if (c == fs.cursors.end()) continue;
    uint64_t start = lineStartAtOrBefore(fs, r.offset);
    if (start < c->second.cursor) {
      c->second.cursor = start;
      c->second.newline_owed = r.newline_owed;
    }
    c->second.delivered = std::min(c->second.delivered, c->second.cursor);
    refreshPending(r.file_id, fs);
  }
  schedule();
}

// ---- scheduling ----

void Router::scheduleSoon() {
  // Input events come in batches (one inotify read, one poll tick): let the whole batch land
  // before filling, so that a rotated file's last growth, reported in the same batch as its
  // successor's creation, is shipped first (rotated files have priority in pickFile).
  uv_timer_start(
      sched_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) static_cast<Router*>(t->data)->schedule();
      },
      0, 0);
}

void Router::schedule() {
  if (in_schedule_) {
    schedule_again_ = true;
    return;
  }
  in_schedule_ = true;
  do {
    // Sinks write what the passes below put in their pipes once, after them: ten files that
    // grew in one event batch leave in one send, not ten.
    for (auto& [name, slot] : sinks_) slot.sink->holdDrain(wantedRoom(*slot.sink));
    do {
      schedule_again_ = false;
      scheduleOnce();
      // Fills whose pages are in the page cache run here, after the scheduling pass (running
      // them inside it would change the maps it walks); their completion may ask for another
      // pass.
      std::vector<std::unique_ptr<FillJob>> jobs;
      jobs.swap(inline_jobs_);
      for (auto& job : jobs) {
        executeFill(sys::SysCalls::real(), *job, loop_src_, dev_null_.get());
        onFillDone(std::move(job));
      }
    } while (schedule_again_ || !inline_jobs_.empty());
    // A drain that frees room makes another pass worth it. Draining never erases a sink (only
    // onFillDone and removeSink do), so the map can be walked while its sinks drain.
    for (auto& [name, slot] : sinks_) {
      uint64_t before = slot.sink->inPipe();
      slot.sink->releaseDrain();
      if (slot.sink->inPipe() < before) {
        slot.wait_for_drain = false;
        schedule_again_ = true;
      }
    }
  } while (schedule_again_ || !inline_jobs_.empty());
  in_schedule_ = false;
}

uint64_t Router::pickFile(SinkSlot& slot) {
  if (slot.bound_file && slot.pending.count(slot.bound_file)) return slot.bound_file;
  slot.bound_file = 0;
  // Rotated and deleted files first (oldest first), so a file is finished before its successor.
  for (uint64_t id : slot.pending) {
    auto it = files_.find(id);
    if (it != files_.end() && !isLive(it->second.follower)) return id;
  }
  // Round robin among live files.
  auto next = slot.pending.upper_bound(slot.last_served);
  if (next == slot.pending.end()) next = slot.pending.begin();
  return next == slot.pending.end() ? 0 : *next;
}

uint64_t Router::wantedRoom(const outputs::Sink& sink) const {
  // Room for a chunk, or for a quarter of the pipe when the pipe is small (pipe_bytes below
  // chunk_bytes, or past pipe-user-pages-soft new pipes get 8 KiB).
  return std::max<uint64_t>(std::min<uint64_t>(cfg_.chunk_bytes, sink.pipe().capacity() / 4), 1);
}

void Router::scheduleOnce() {
  if (!filling_) return;
  // Which file each idle sink with room should be fed from.
  std::map<uint64_t, std::vector<SinkSlot*>> wants;
  for (auto& [name, slot] : sinks_) {
    if (slot.filling || slot.removing || slot.wait_for_drain || slot.pending.empty()) continue;
    if (!slot.sink->acceptsData(wantedRoom(*slot.sink))) continue;
    uint64_t id = pickFile(slot);
    if (id == 0) continue;
    auto it = files_.find(id);
    if (it == files_.end() || !it->second.follower || it->second.follower->fd() < 0) {
      slot.pending.erase(id);
      continue;
    }
    if (it->second.retry_at > std::chrono::steady_clock::now()) continue;
    wants[id].push_back(&slot);
  }
  for (auto& [id, slots] : wants) {
    FileState& fs = files_[id];
    // Group the sinks that stand at the same offset (lockstep); without lockstep, one each.
    std::map<uint64_t, std::vector<SinkSlot*>> groups;
    for (SinkSlot* slot : slots) {
      const Cursor& c = fs.cursors[slot->sink->name()];
      if (cfg_.lockstep) {
        groups[c.cursor].push_back(slot);
      } else {
        issue(fs, id, {slot});
      }
    }
    for (auto& [offset, group] : groups) issue(fs, id, group);
  }
}

void Router::issue(FileState& fs, uint64_t file_id, const std::vector<SinkSlot*>& group) {
  const inputs::Follower& f = *fs.follower;
  const Cursor& first = fs.cursors[group.front()->sink->name()];
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
  for (SinkSlot* slot : group) job->max_len = std::min(job->max_len, slot->sink->room());
  // Pipes count slots, not bytes (docs/design.md K3): a 64 KiB piece at an unaligned offset takes
  // 17 page slots, so a pipe "with room for" 256 KiB takes only ~240 KiB of file pages. Leave an
  // eighth spare so the last piece is not cut short (which would demote a lockstep member).
  job->max_len -= job->max_len / 8;
  job->copy_mode = fs.copy_mode;
  job->lockstep = cfg_.lockstep;
  for (SinkSlot* slot : group) {
    const Cursor& c = fs.cursors[slot->sink->name()];
    FillTarget t;
    t.sink = slot->sink->name();
    t.pipe_wr = slot->sink->pipe().writeFd();
    t.sink_epoch = slot->sink->epoch();
    t.newline_first = c.newline_owed;
    job->targets.push_back(std::move(t));
    slot->filling = true;
    slot->last_served = file_id;
  }
  ++fs.fills_in_flight;
  ++stats_.fills;
  if (group.size() > 1) ++stats_.lockstep_fills;
  // Splicing from the page cache does not block; reading from disk does (even with
  // SPLICE_F_NONBLOCK, docs/design.md K4). Predict residency with a 1-byte RWF_NOWAIT read at
  // both ends of the range: fresh appends and a cached catch-up run on the loop without a
  // thread round trip, anything cold goes to the I/O thread.
  // Bytes appended since the file's previous refresh, seconds ago at most, need no probe: they
  // were just written, and dirty pages stay cached until written back.
  uint64_t last = std::min(job->offset + job->max_len, job->limit_end);
  bool fresh = job->offset >= f.freshFrom() && uv_now(loop_) - f.lastChangeMs() < kFreshMs;
  if (inline_fills_ && last > job->offset &&
      (fresh || (residentNow(f.fd(), job->offset) && residentNow(f.fd(), last - 1)))) {
    ++stats_.inline_fills;
    inline_jobs_.push_back(std::move(job));
  } else {
    io_.submit(std::move(job));
  }
}

void Router::onFillDone(std::unique_ptr<FillJob> job) {
  auto it = files_.find(job->file_id);
  if (it == files_.end()) return;  // cannot happen: a file with fills in flight is kept
  FileState& fs = it->second;
  --fs.fills_in_flight;
  if (job->unsupported && !fs.copy_mode) {
    fs.copy_mode = true;
    ++stats_.copy_fallbacks;
    spdlog::warn("{}: the filesystem refuses splice; using read/write (counted as copies)",
                 fs.path);
  }
  if (job->error) {
    // An I/O error (EIO on a bad disk...) is retried, but not in a tight loop.
    spdlog::warn("{}: reading failed: {}; retrying in 1 s", fs.path, job->error.toString());
    fs.retry_at = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  }
  uint64_t planned = job->planned_end - job->offset;
  std::vector<std::string> removed;
  for (const FillTarget& t : job->targets) {
    auto slot_it = sinks_.find(t.sink);
    if (slot_it == sinks_.end()) continue;
    SinkSlot& slot = slot_it->second;
    slot.filling = false;
    if (slot.removing) {
      removed.push_back(t.sink);
      continue;
    }
    outputs::Sink& sink = *slot.sink;
    if (sink.epoch() != t.sink_epoch) {
      // The connection broke while we filled: those bytes belong to no stream. The rewind has
      // already put the cursor back at or before job->offset.
      sink.discardPipe();
      continue;
    }
    outputs::Segment seg;
    seg.file_id = job->file_id;
    seg.generation = job->generation;
    seg.offset = job->offset;
    seg.length = t.moved;
    seg.newline = t.newline_after ? 1 : 0;
    seg.newline_first = t.newline_first_written;
    seg.ends_line =
        t.newline_after || (t.moved == planned && job->planned_at_boundary && !job->limit_is_break);
    seg.source = fs.source;
    bool stale = !fs.follower || job->generation != fs.generation;
    if (!stale) {
      Cursor& c = fs.cursors[t.sink];
      c.cursor = job->offset + t.moved;
      if (t.newline_first && !t.newline_first_written) {
        c.newline_owed = true;
      } else {
        c.newline_owed = job->limit_is_break && c.cursor == job->limit_end && !t.newline_after;
      }
      if (t.moved > 0) {
        bool at_line_end = t.moved == planned && job->planned_at_boundary && !c.newline_owed;
        slot.bound_file = at_line_end ? 0 : job->file_id;
      }
      if (job->targets.size() > 1 && t.moved < planned) ++stats_.demotions;
      // Nothing moved into a pipe that still holds bytes: out of slots. Without this the
      // sink would be picked again at once, forever (a stalled collector spun the loop).
      if (t.moved == 0 && !t.newline_first_written && planned > 0 && sink.inPipe() > 0) {
        slot.wait_for_drain = true;
      }
    }
    // Registered even when stale (truncated meanwhile): the bytes are in the pipe and the
    // sink's stream accounting must cover them; their delivery reports are then ignored.
    if (seg.streamBytes() > 0) sink.appended(std::move(seg));
  }
  for (const std::string& name : removed) eraseSink(name);
  if (!fs.follower) {
    if (fs.fills_in_flight == 0) files_.erase(it);
  } else {
    refreshPending(job->file_id, fs);
    pruneBreaks(fs);
    maybePoke(fs);
  }
  schedule();
}

void Router::pruneBreaks(FileState& fs) {
  if (!fs.follower || fs.follower->breaks().empty()) return;
  uint64_t low = UINT64_MAX;
  for (const auto& [name, c] : fs.cursors) low = std::min(low, c.delivered);
  // A break below every delivered offset is never needed again (a rewind never goes below what
  // was delivered, it only looks for the line start at or before it).
  if (low != UINT64_MAX && low > 0) fs.follower->pruneBreaksBelow(low - 1);
}

void Router::tick() {
  schedule();
}

void Router::maybePoke(FileState& fs) {
  if (!fs.follower || isLive(fs.follower) || !poke_) return;
  if (!fileDrained(*fs.follower)) return;
  to_poke_.insert(fs.follower->id());
  uv_timer_start(
      poke_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) static_cast<Router*>(t->data)->runPokes();
      },
      0, 0);
}

void Router::runPokes() {
  std::set<uint64_t> ids;
  ids.swap(to_poke_);
  for (uint64_t id : ids) {
    auto it = files_.find(id);
    // Looked up again: the file may have been closed since the poke was queued.
    if (it != files_.end() && it->second.follower && poke_) poke_(*it->second.follower);
  }
}

bool Router::drained() const {
  if (io_.inFlight() > 0) return false;
  for (const auto& [name, slot] : sinks_) {
    if (slot.sink->pendingBytes() > 0) return false;
  }
  return true;
}

CheckpointEntry Router::entryFor(const FileState& fs, const inputs::Follower& f,
                                 int64_t now) const {
  CheckpointEntry e;
  e.identity = f.identity();
  e.input = fs.input;
  e.path = f.path();
  e.updated_unix = now;
  // Offsets of sinks removed by a reload stay (a later reload may bring them back).
  if (const CheckpointEntry* old = store_.find(e.identity.dev, e.identity.ino)) {
    e.offsets = old->offsets;
  }
  for (const auto& [sink, c] : fs.cursors) e.offsets[sink] = c.delivered;
  return e;
}

void Router::refreshDeliveries() {
  for (auto& [name, slot] : sinks_) slot.sink->refreshDelivery();
}

void Router::checkpoint() {
  refreshDeliveries();
  int64_t now = std::time(nullptr);
  for (auto& [id, fs] : files_) {
    // Unchanged entries are rewritten once an hour, so that their age tells followed files
    // from files gone for good (CheckpointStore::expire).
    if (!fs.follower || (!fs.dirty && now - fs.last_put_unix < kRefreshEntrySeconds)) continue;
    fs.last_put_unix = now;
    store_.put(entryFor(fs, *fs.follower, now));
    fs.dirty = false;
  }
  // Entries of files not followed for a day (deleted, or no longer matched) go.
  size_t expired = store_.expire(now - kExpireEntrySeconds);
  if (expired) spdlog::info("checkpoint: {} entries of files gone for a day expired", expired);
}

void Router::closeSinks() {
  for (auto& [name, slot] : sinks_) slot.sink->close(nullptr);
}

void Router::visit(const std::function<void(const FileSinkView&)>& fn) const {
  for (const auto& [id, fs] : files_) {
    if (!fs.follower) continue;
    for (const auto& [sink, c] : fs.cursors) {
      fn({fs.input, fs.follower->path(), sink, c.delivered, c.cursor, fs.follower->completeEnd()});
    }
  }
}

}  // namespace logsplice::agent
