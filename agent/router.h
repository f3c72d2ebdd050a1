#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/checkpoint_store.h"
#include "agent/delivery_book.h"
#include "agent/fill_planner.h"
#include "agent/io_thread.h"
#include "agent/pipe_budget.h"
#include "agent/route_table.h"
#include "config/config.h"
#include "inputs/file_observer.h"
#include "inputs/follower.h"
#include "outputs/sink.h"
#include "sys/clock.h"
#include "sys/metrics.h"
#include "sys/sys_calls.h"
#include "sys/uv_handle.h"

namespace logsplice::agent {

struct RouterStats {
  uint64_t fills = 0;           // fill jobs run
  uint64_t lockstep_fills = 0;  // of which fed two sinks or more with one splice + tee
  uint64_t demotions = 0;       // a sink came up short in a lockstep fill and left the group
  uint64_t copy_fallbacks = 0;  // files switched to read/write because splice was refused
  uint64_t inline_fills = 0;    // fills run on the loop because their pages were cached
  uint64_t yields = 0;          // scheduling passes cut short to let the loop turn
};

// Bytes one scheduling call fills on the loop before it lets the loop turn (Router::schedule):
// a few milliseconds of splicing, or of producing to Kafka, at the rates docs/design.md gives.
inline constexpr uint64_t kScheduleYieldBytes = 4 * 1024 * 1024;

// For each followed file, the sinks its input is routed to, each with its own cursor into the
// file (the page cache is the shared buffer). Sinks that stand at the same offset of a file are
// filled together: one splice from the file, tee into the others (lockstep). A sink that comes up
// short simply ends at another offset and so leaves the group; it catches up from the file on
// its own and is grouped again once its cursor meets the others'. Chunks end at line ends, so a
// sink switches files only at a line boundary. Delivered offsets feed the checkpoint store.
//
// The router coordinates three parts: the RouteTable (sinks and files by dense id, with a cursor
// per pair), the FillPlanner (what to fill next, lockstep groups, the residency probe) and the
// DeliveryBook (delivered offsets, rewinds, retention, checkpoint entries). It owns the fill
// machinery (the I/O thread, fills run on the loop) and the scheduling pass.
//
// Loop thread only. Owns the sinks; the I/O thread, the checkpoint store and the loop must
// outlive it. Followers are borrowed between fileOpened and fileClosing.
class Router : public inputs::FileObserver, public outputs::SinkListener {
 public:
  // `sys` serves the fills, the residency probe and line-start lookups; `clock` retry times,
  // the freshness of appends and checkpoint entries' times.
  Router(uv_loop_t* loop, const config::AgentConfig& cfg, CheckpointStore& store,
         sys::SysCalls& sys = sys::SysCalls::real(), sys::Clock& clock = sys::Clock::real());
  ~Router() override;

  // Whether fills of cached pages may run on the loop (default). Off: every fill goes through
  // the I/O thread (tests of fills in flight; benchmarks).
  void setInlineFills(bool on) { inline_fills_ = on; }
  // Starts the I/O thread.
  sys::Error start();
  // Stops the I/O thread; fills still queued come back unrun.
  void stop();
  // Call before any file is opened. The router gives the sink its id (Sink::setId; ids are
  // never reused, see RouteTable) and starts it.
  sys::Error addSink(std::unique_ptr<outputs::Sink> sink, std::vector<std::string> inputs);
  outputs::Sink* sink(const std::string& name);
  // Reload: stops a sink and forgets its cursors (its checkpoint offsets stay in the store, so
  // re-adding it resumes). A fill in flight is waited for.
  void removeSink(const std::string& name);
  // Reload: adds a sink while files are followed. Each file starts at the sink's checkpoint
  // offset if the store has one (a sink re-added or changed), else at the file's complete end
  // (an output added at run time gets new lines).
  sys::Error addSinkLive(std::unique_ptr<outputs::Sink> sink, std::vector<std::string> inputs);
  // Reload: the followers of `input` are about to close because the input was removed or
  // changed: keep their checkpoints, count nothing as missed.
  void detachInput(const std::string& input) {
    detached_inputs_.insert(input);
    refreshDeliveries();  // its files' entries are written as they close
  }
  // Every sink reports what its peer has acknowledged by now.
  void refreshDeliveries();
  void attachInput(const std::string& input) { detached_inputs_.erase(input); }
  std::vector<outputs::Sink*> sinks() const;
  // Called when a file starts being followed: its identity should reach the checkpoint file
  // soon, so that after a crash it can be found again even if it is rotated meanwhile.
  void setOnNewFile(std::function<void()> fn) { on_new_file_ = std::move(fn); }

  // Shutdown: no new fills; what is in pipes keeps draining.
  void stopFilling() { filling_ = false; }
  // From now on, closing followers is part of the shutdown: checkpoints stay, nothing counts
  // as missed.
  void beginShutdown() {
    filling_ = false;
    shutting_down_ = true;
  }
  // No fill in flight and every sink has delivered everything it was given.
  bool drained() const;
  // Periodic: retries files whose reads failed.
  void tick();
  // Writes the delivered offsets of every changed file into the store (not flushed).
  void checkpoint();
  void closeSinks();

  const RouterStats& stats() const { return stats_; }
  // The logsplice_router_* families and, per (file, sink), logsplice_file_delivered_bytes and
  // logsplice_file_lag_bytes.
  void collectMetrics(sys::MetricWriter& out) const;

  // What the metrics endpoint shows per (file, sink).
  struct FileSinkView {
    std::string input, path, sink;
    uint64_t delivered, cursor, end;
  };
  void visit(const std::function<void(const FileSinkView&)>& fn) const;
  size_t filesOpen() const { return table_.files(); }

  // inputs::FileObserver
  void fileOpened(inputs::Follower& f, uint64_t default_start) override;
  void fileGrew(inputs::Follower& f) override;
  void fileTruncated(inputs::Follower& f) override;
  bool fileDrained(const inputs::Follower& f) const override;
  void fileClosing(inputs::Follower& f) override;

  // outputs::SinkListener
  void sinkDelivered(outputs::Sink& sink, uint64_t file_id, uint64_t generation,
                     uint64_t offset_end) override;
  void sinkReady(outputs::Sink& sink) override;
  void sinkRewound(outputs::Sink& sink, const std::vector<Rewind>& rewinds) override;
  void sinkHolds(outputs::Sink& sink, uint64_t file_id, uint64_t generation,
                 uint64_t offset) override;

 private:
  void schedule();
  void scheduleSoon();
  void scheduleOnce();
  // Starts one planned fill: on the loop if its pages are cached, else on the I/O thread.
  void issue(FileRoute& fs, uint64_t file_id, const std::vector<uint32_t>& sinks);
  void onFillDone(std::unique_ptr<FillJob> job);
  // Hands one target's result to its sink and moves its cursor.
  void finishTarget(const FillJob& job, const FillTarget& t, FileRoute& fs, SinkSlot& slot);
  void maybePoke(FileRoute& fs);
  void eraseSink(uint32_t id);

  uv_loop_t* loop_;
  config::AgentConfig cfg_;
  CheckpointStore& store_;
  sys::SysCalls& sys_;
  sys::Clock& clock_;
  RouteTable table_;
  FillPlanner planner_;
  DeliveryBook book_;
  IoThread io_;
  // Fills of cached pages, run on the loop after a scheduling pass (what the I/O thread has
  // for its own fills: a lockstep source pipe and /dev/null).
  struct LoopFills {
    sys::Pipe src;
    sys::UniqueFd dev_null;
    std::vector<std::unique_ptr<FillJob>> jobs;
  } loop_fills_;
  bool inline_fills_ = true;
  PipeBudget pipe_budget_;
  std::function<void()> on_new_file_;
  sys::UvHandle<uv_timer_t> sched_timer_;  // scheduleSoon
  sys::UvHandle<uv_check_t> resume_;       // the rest of a call cut short (schedule)
  sys::UvHandle<uv_idle_t> resume_nowait_;  // meanwhile the loop polls without blocking
  RouterStats stats_;
  bool filling_ = true;
  bool shutting_down_ = false;
  std::set<std::string> detached_inputs_;
  bool in_schedule_ = false;
  bool schedule_again_ = false;
};

}  // namespace logsplice::agent
