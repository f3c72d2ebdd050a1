#include "agent/router.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>

#include "sys/assert.h"

namespace logsplice::agent {
namespace {

std::string baseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool isLive(const inputs::Follower* f) {
  return f && f->live();  // kLive, or kSuspended (still its name, fd closed)
}

}  // namespace

Router::Router(uv_loop_t* loop, const config::AgentConfig& cfg, CheckpointStore& store,
               sys::SysCalls& sys, sys::Clock& clock)
    : loop_(loop),
      cfg_(cfg),
      store_(store),
      sys_(sys),
      clock_(clock),
      planner_(table_, cfg_, sys, clock),
      book_(table_, store, sys, clock),
      io_(loop, [this](std::unique_ptr<FillJob> job) { onFillDone(std::move(job)); }, sys),
      pipe_budget_(cfg_.pipe_bytes) {
  LS_CHECK_UV(sched_timer_.init(uv_timer_init, loop_, this));
  LS_CHECK_UV(resume_.init(uv_check_init, loop_, this));
  LS_CHECK_UV(resume_nowait_.init(uv_idle_init, loop_, this));
}

Router::~Router() {
  stop();
}

sys::Error Router::start() {
  auto src = sys::Pipe::create(cfg_.pipe_bytes);
  if (!src.ok()) return src.error();
  loop_fills_.src = std::move(src.value());
  loop_fills_.dev_null.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!loop_fills_.dev_null) return sys::Error::fromErrno(errno, "/dev/null");
  return io_.start(cfg_.pipe_bytes);
}

void Router::stop() {
  sched_timer_.close();
  resume_.close();
  resume_nowait_.close();
  filling_ = false;  // fills coming back unrun must not queue new ones on a stopped thread
  io_.stop();
  io_.close();
}

sys::Error Router::addSink(std::unique_ptr<outputs::Sink> sink, std::vector<std::string> inputs) {
  SinkSlot& slot = table_.addSink(std::move(sink));
  slot.inputs.insert(inputs.begin(), inputs.end());
  if (auto err = slot.sink->start()) return err;
  pipe_budget_.add(*slot.sink);
  return sys::Error::ok();
}

sys::Error Router::addSinkLive(std::unique_ptr<outputs::Sink> sink,
                               std::vector<std::string> inputs) {
  std::string name = sink->name();
  std::set<std::string> routed(inputs.begin(), inputs.end());
  // Where it starts in each file, found before it gets its id (starting it can report back).
  std::vector<std::pair<uint64_t, uint64_t>> starts;  // (file id, offset)
  for (auto& [id, fs] : table_.allFiles()) {
    if (!fs.follower || !routed.count(fs.input())) continue;
    starts.emplace_back(id, book_.liveAddOffset(fs, name));
  }
  outputs::Sink* raw = sink.get();
  if (auto err = addSink(std::move(sink), std::move(inputs))) return err;
  for (auto [file_id, offset] : starts) {
    FileRoute& fs = *table_.file(file_id);
    Cursor c;
    c.cursor = offset;
    c.delivered = offset;
    fs.route(raw->id(), c);
    book_.markDirty(fs);
  }
  for (auto& [id, fs] : table_.allFiles()) planner_.refreshPending(id, fs);
  schedule();
  return sys::Error::ok();
}

void Router::removeSink(const std::string& name) {
  SinkSlot* slot = table_.slotByName(name);
  if (!slot) return;
  checkpoint();  // what it delivered so far stays in the store
  slot->removing = true;
  slot->pending.clear();
  slot->sink->stop();
  if (!slot->filling) eraseSink(slot->sink->id());
}

void Router::eraseSink(uint32_t id) {
  std::unique_ptr<outputs::Sink> sink = table_.eraseSink(id);
  if (sink) sink->close(nullptr);
}

outputs::Sink* Router::sink(const std::string& name) {
  SinkSlot* slot = table_.slotByName(name);
  return slot ? slot->sink.get() : nullptr;
}

std::vector<outputs::Sink*> Router::sinks() const {
  std::vector<outputs::Sink*> out;
  table_.forEachSink([&](uint32_t, const SinkSlot& slot) { out.push_back(slot.sink.get()); });
  // By name, as before sinks had ids: metrics and logs list them in a stable order.
  std::sort(out.begin(), out.end(),
            [](const outputs::Sink* a, const outputs::Sink* b) { return a->name() < b->name(); });
  return out;
}

// ---- inputs::FileObserver ----

void Router::fileOpened(inputs::Follower& f, uint64_t default_start) {
  FileRoute fs;
  fs.follower = &f;
  fs.source = std::make_shared<const outputs::SourceInfo>(
      outputs::SourceInfo{f.inputName(), f.path(), baseName(f.path()), f.identity().dev,
                          f.identity().ino, f.identity().fingerprint,
                          f.identity().fingerprint_len});
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
  FileRoute& state = table_.addFile(f.id(), std::move(fs));
  table_.forEachSink([&](uint32_t sink_id, const SinkSlot& slot) {
    if (slot.removing || !slot.inputs.count(state.input())) return;
    Cursor c;
    c.cursor = book_.openingOffset(state, saved, resume, slot.sink->name(), default_start);
    c.delivered = c.cursor;
    state.route(sink_id, c);
  });
  book_.markDirty(state);  // its identity reaches the checkpoint file soon (setOnNewFile)
  spdlog::debug("following {} (id {}, {} sinks{})", f.path(), f.id(), state.routedSinks(),
                resume ? ", resumed from checkpoint" : "");
  planner_.refreshPending(f.id(), state);
  if (on_new_file_) on_new_file_();
  scheduleSoon();
}

void Router::fileGrew(inputs::Follower& f) {
  FileRoute* fs = table_.file(f.id());
  if (!fs) return;
  planner_.refreshPending(f.id(), *fs);
  scheduleSoon();
}

void Router::fileTruncated(inputs::Follower& f) {
  FileRoute* fs = table_.file(f.id());
  if (!fs) return;
  fs->generation = f.generation();
  fs->forEachCursor([&](uint32_t sink_id, Cursor& c) {
    c = Cursor{};
    c.routed = true;
    SinkSlot* slot = table_.slot(sink_id);
    if (slot && slot->bound_file == f.id()) slot->bound_file = 0;
  });
  book_.markDirty(*fs);
  planner_.refreshPending(f.id(), *fs);
  scheduleSoon();
}

bool Router::fileDrained(const inputs::Follower& f) const {
  const FileRoute* fs = table_.file(f.id());
  return !fs || book_.drained(*fs, f);
}

void Router::fileClosing(inputs::Follower& f) {
  FileRoute* fs = table_.file(f.id());
  if (!fs) return;
  fs->forEachCursor([&](uint32_t sink_id, const Cursor&) {
    SinkSlot* slot = table_.slot(sink_id);
    if (!slot) return;
    slot->pending.erase(f.id());
    if (slot->bound_file == f.id()) slot->bound_file = 0;
  });
  book_.release(*fs, f, shutting_down_ || detached_inputs_.count(fs->input()) > 0);
  if (fs->fills_in_flight > 0) {
    fs->follower = nullptr;  // erased when the last fill comes back
  } else {
    table_.eraseFile(f.id());
  }
}

// ---- outputs::SinkListener ----

void Router::sinkDelivered(outputs::Sink& s, uint64_t file_id, uint64_t generation,
                           uint64_t offset_end) {
  FileRoute* fs = table_.file(file_id);
  if (fs && book_.delivered(*fs, s.id(), generation, offset_end)) maybePoke(*fs);
}

void Router::sinkReady(outputs::Sink& s) {
  if (SinkSlot* slot = table_.slot(s.id())) slot->wait_for_drain = false;
  schedule();
}

void Router::sinkRewound(outputs::Sink& s, const std::vector<Rewind>& rewinds) {
  if (SinkSlot* slot = table_.slot(s.id())) {
    slot->bound_file = 0;
    slot->wait_for_drain = false;
  }
  for (const Rewind& r : rewinds) {
    FileRoute* fs = table_.file(r.file_id);
    if (fs && book_.rewind(*fs, s.id(), r.generation, r.offset, r.newline_owed)) {
      planner_.refreshPending(r.file_id, *fs);
    }
  }
  schedule();
}

void Router::sinkHolds(outputs::Sink& s, uint64_t file_id, uint64_t generation,
                       uint64_t offset) {
  SinkSlot* slot = table_.slot(s.id());
  FileRoute* fs = table_.file(file_id);
  // With a fill in flight its completion sets the cursor: no jump then (the sink drops what
  // its destination holds anyway).
  if (!slot || slot->filling || !fs || !book_.skipTo(*fs, s.id(), generation, offset)) return;
  if (slot->bound_file == file_id) slot->bound_file = 0;
  planner_.refreshPending(file_id, *fs);
  scheduleSoon();
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
  if (resume_) {
    uv_check_stop(resume_.get());
    uv_idle_stop(resume_nowait_.get());
  }
  // Bytes filled on the loop in this call: cached fills and always-ready sinks (an archive,
  // librdkafka's queue) would otherwise keep the pass going until a whole backlog is shipped,
  // and the loop would serve nothing else meanwhile (signals, /metrics, checkpoints, inotify).
  uint64_t filled = 0;
  do {
    // Sinks write what the passes below put in their pipes once, after them: ten files that
    // grew in one event batch leave in one send, not ten.
    table_.forEachSink([&](uint32_t, SinkSlot& slot) {
      slot.sink->holdDrain(planner_.wantedRoom(*slot.sink));
    });
    do {
      schedule_again_ = false;
      scheduleOnce();
      // Fills whose pages are in the page cache run here, after the scheduling pass (running
      // them inside it would change the table it walks); their completion may ask for another
      // pass.
      std::vector<std::unique_ptr<FillJob>> jobs;
      jobs.swap(loop_fills_.jobs);
      for (auto& job : jobs) {
        executeFill(sys_, *job, loop_fills_.src, loop_fills_.dev_null.get());
        for (const FillTarget& t : job->targets) filled += t.moved;
        onFillDone(std::move(job));
      }
    } while ((schedule_again_ || !loop_fills_.jobs.empty()) && filled < kScheduleYieldBytes);
    // A drain that frees room makes another pass worth it. Draining never erases a sink (only
    // onFillDone and removeSink do), so the table can be walked while its sinks drain.
    table_.forEachSink([&](uint32_t, SinkSlot& slot) {
      uint64_t before = slot.sink->inPipe();
      slot.sink->releaseDrain();
      if (slot.sink->inPipe() < before) {
        slot.wait_for_drain = false;
        schedule_again_ = true;
      }
    });
    // Past the budget the rest waits until the loop has polled its descriptors: a check
    // handle runs right after the poll, and an active idle handle keeps that poll from
    // blocking. Every fill issued was run (issue() queues fills only in scheduleOnce) and every
    // drain released above, so nothing is left half done.
    if (schedule_again_ && filled >= kScheduleYieldBytes && resume_) {
      schedule_again_ = false;
      ++stats_.yields;
      uv_check_start(resume_.get(),
                     [](uv_check_t* h) { static_cast<Router*>(h->data)->schedule(); });
      uv_idle_start(resume_nowait_.get(), [](uv_idle_t*) {});
      break;
    }
  } while (schedule_again_ || !loop_fills_.jobs.empty());
  in_schedule_ = false;
}

void Router::scheduleOnce() {
  if (!filling_) return;
  for (FillPlanner::Fill& fill : planner_.plan()) {
    issue(*table_.file(fill.file_id), fill.file_id, fill.sinks);
  }
}

void Router::issue(FileRoute& fs, uint64_t file_id, const std::vector<uint32_t>& sinks) {
  std::unique_ptr<FillJob> job = planner_.buildJob(fs, file_id, sinks);
  ++fs.fills_in_flight;
  ++stats_.fills;
  if (sinks.size() > 1) ++stats_.lockstep_fills;
  // Cached pages are filled on the loop without a thread round trip; anything cold goes to the
  // I/O thread (docs/design.md K4).
  if (inline_fills_ && planner_.cached(*job, *fs.follower)) {
    ++stats_.inline_fills;
    loop_fills_.jobs.push_back(std::move(job));
  } else {
    io_.submit(std::move(job));
  }
}

void Router::onFillDone(std::unique_ptr<FillJob> job) {
  FileRoute* fsp = table_.file(job->file_id);
  if (!fsp) return;  // cannot happen: a file with fills in flight is kept
  FileRoute& fs = *fsp;
  --fs.fills_in_flight;
  if (job->unsupported && !fs.copy_mode) {
    fs.copy_mode = true;
    ++stats_.copy_fallbacks;
    spdlog::warn("{}: the filesystem refuses splice; using read/write (counted as copies)",
                 fs.path());
  }
  if (job->error) {
    // An I/O error (EIO on a bad disk...) is retried, but not in a tight loop.
    spdlog::warn("{}: reading failed: {}; retrying in 1 s", fs.path(), job->error.toString());
    fs.retry_at_ms = clock_.monotonicMs() + 1000;
  }
  std::vector<uint32_t> removed;
  for (const FillTarget& t : job->targets) {
    SinkSlot* slot = table_.slot(t.sink);
    if (!slot) continue;
    slot->filling = false;
    if (slot->removing) {
      removed.push_back(t.sink);
      continue;
    }
    finishTarget(*job, t, fs, *slot);
  }
  for (uint32_t id : removed) eraseSink(id);
  if (!fs.follower) {
    if (fs.fills_in_flight == 0) table_.eraseFile(job->file_id);
  } else {
    planner_.refreshPending(job->file_id, fs);
    book_.pruneBreaks(fs);
    maybePoke(fs);
  }
  schedule();
}

void Router::finishTarget(const FillJob& job, const FillTarget& t, FileRoute& fs,
                          SinkSlot& slot) {
  outputs::Sink& sink = *slot.sink;
  // Copied bytes went through our memory whatever becomes of them (also when the connection
  // broke meanwhile): the sink's count stays the sum that sys::CopyCounter sees.
  sink.mutableStats().bytes_copied += t.copied;
  if (sink.epoch() != t.sink_epoch) {
    // The connection broke while we filled: those bytes belong to no stream. The rewind has
    // already put the cursor back at or before job.offset.
    sink.discardPipe();
    return;
  }
  uint64_t planned = job.planned_end - job.offset;
  outputs::Segment seg;
  seg.file_id = job.file_id;
  seg.generation = job.generation;
  seg.offset = job.offset;
  seg.length = t.moved;
  seg.newline = t.newline_after ? 1 : 0;
  seg.newline_first = t.newline_first_written;
  seg.ends_line =
      t.newline_after || (t.moved == planned && job.planned_at_boundary && !job.limit_is_break);
  seg.source = fs.source;
  Cursor* c = fs.cursor(t.sink);
  bool stale = !fs.follower || job.generation != fs.generation || !c;
  if (!stale) {
    c->cursor = job.offset + t.moved;
    if (t.newline_first && !t.newline_first_written) {
      c->newline_owed = true;
    } else {
      c->newline_owed = job.limit_is_break && c->cursor == job.limit_end && !t.newline_after;
    }
    if (t.moved > 0) {
      bool at_line_end = t.moved == planned && job.planned_at_boundary && !c->newline_owed;
      slot.bound_file = at_line_end ? 0 : job.file_id;
    }
    if (job.targets.size() > 1 && t.moved < planned) ++stats_.demotions;
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

void Router::tick() {
  schedule();
}

void Router::maybePoke(FileRoute& fs) {
  if (!fs.follower || isLive(fs.follower)) return;
  // Every sink has a rotated or deleted file: its tailer may close it now. The follower asks
  // its owner directly; the owner defers the recheck, so the follower (and this FileRoute) is
  // never closed inside this router callback.
  if (fileDrained(*fs.follower)) fs.follower->requestRecheck();
}

bool Router::drained() const {
  if (io_.inFlight() > 0) return false;
  bool all = true;
  table_.forEachSink([&](uint32_t, const SinkSlot& slot) {
    if (slot.sink->pendingBytes() > 0) all = false;
  });
  return all;
}

void Router::refreshDeliveries() {
  table_.forEachSink([](uint32_t, SinkSlot& slot) { slot.sink->refreshDelivery(); });
}

void Router::checkpoint() {
  refreshDeliveries();
  book_.checkpoint();
}

void Router::closeSinks() {
  table_.forEachSink([](uint32_t, SinkSlot& slot) { slot.sink->close(nullptr); });
}

void Router::visit(const std::function<void(const FileSinkView&)>& fn) const {
  std::vector<FileSinkView> views;
  for (const auto& [id, fs] : table_.allFiles()) {
    if (!fs.follower) continue;
    views.clear();
    fs.forEachCursor([&](uint32_t sink_id, const Cursor& c) {
      const SinkSlot* slot = table_.slot(sink_id);
      if (!slot) return;
      views.push_back({fs.input(), fs.follower->path(), slot->sink->name(), c.delivered, c.cursor,
                       fs.follower->completeEnd()});
    });
    // Each file's sinks by name, as the metrics listed them before sinks had ids.
    std::sort(views.begin(), views.end(),
              [](const FileSinkView& a, const FileSinkView& b) { return a.sink < b.sink; });
    for (const FileSinkView& v : views) fn(v);
  }
}

void Router::collectMetrics(sys::MetricWriter& out) const {
  const sys::MetricLabels none;
  out.counter("logsplice_router_fills_total", "Fill jobs run by the I/O thread.", none,
              static_cast<double>(stats_.fills));
  out.counter("logsplice_router_lockstep_fills_total", "Fills that fed several sinks by tee.",
              none, static_cast<double>(stats_.lockstep_fills));
  out.counter("logsplice_router_demotions_total", "Sinks that came up short in a lockstep fill.",
              none, static_cast<double>(stats_.demotions));
  out.counter("logsplice_router_inline_fills_total",
              "Fills run on the loop thread because their pages were in the page cache.", none,
              static_cast<double>(stats_.inline_fills));
  out.counter("logsplice_router_copy_fallbacks_total", "Files switched to read/write.", none,
              static_cast<double>(stats_.copy_fallbacks));
  out.counter("logsplice_router_yields_total",
              "Scheduling passes cut short after 4 MiB so that the loop serves other events.",
              none, static_cast<double>(stats_.yields));
  std::vector<FileSinkView> views;
  visit([&](const FileSinkView& v) { views.push_back(v); });
  for (const auto& v : views) {
    out.gauge("logsplice_file_delivered_bytes", "Offset delivered per file and sink.",
              {{"sink", v.sink}, {"input", v.input}, {"path", v.path}},
              static_cast<double>(v.delivered));
  }
  for (const auto& v : views) {
    out.gauge("logsplice_file_lag_bytes", "Bytes behind the file's complete end.",
              {{"sink", v.sink}, {"input", v.input}, {"path", v.path}},
              static_cast<double>(v.end > v.delivered ? v.end - v.delivered : 0));
  }
}

}  // namespace logsplice::agent
