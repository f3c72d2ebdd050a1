#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "inputs/file_identity.h"
#include "inputs/follower.h"
#include "outputs/sink.h"

namespace logsplice::agent {

// One (file, sink) pair: where the sink stands in the file.
struct Cursor {
  uint64_t cursor = 0;     // next file byte to put into the sink's pipe
  uint64_t delivered = 0;  // delivered (acked / written) up to here
  bool newline_owed = false;
  bool routed = false;  // the sink is routed to this file's input (the slot is in use)
};

// What the router knows of one followed file. Its cursors are indexed by sink id.
struct FileRoute {
  inputs::Follower* follower = nullptr;  // null once closing with fills in flight
  // Handed to every segment. Its `input` and `path` (the file's path as first seen) are kept
  // there only, and the identity only in the follower: bytes per file count with 100,000 files.
  std::shared_ptr<const outputs::SourceInfo> source;
  uint64_t generation = 0;
  std::vector<Cursor> cursors;  // by sink id; `routed` says which are in use
  bool copy_mode = false;
  bool dirty = true;    // delivered offsets changed since the last checkpoint
  bool queued = false;  // in DeliveryBook's list of files to checkpoint
  uint64_t id = 0;      // the follower's id (set by RouteTable::addFile)
  int64_t last_put_unix = 0;
  int fills_in_flight = 0;
  uint64_t retry_at_ms = 0;  // monotonic; after a read error no fill before this

  Cursor* cursor(uint32_t sink_id) {
    return sink_id < cursors.size() && cursors[sink_id].routed ? &cursors[sink_id] : nullptr;
  }
  const Cursor* cursor(uint32_t sink_id) const {
    return sink_id < cursors.size() && cursors[sink_id].routed ? &cursors[sink_id] : nullptr;
  }
  // Routes the sink to this file with the cursor `c`.
  Cursor& route(uint32_t sink_id, Cursor c);
  void unroute(uint32_t sink_id) {
    if (sink_id < cursors.size()) cursors[sink_id] = Cursor{};
  }
  template <typename Fn>  // fn(uint32_t sink_id, Cursor&)
  void forEachCursor(Fn&& fn) {
    for (uint32_t id = 0; id < cursors.size(); ++id) {
      if (cursors[id].routed) fn(id, cursors[id]);
    }
  }
  template <typename Fn>  // fn(uint32_t sink_id, const Cursor&)
  void forEachCursor(Fn&& fn) const {
    for (uint32_t id = 0; id < cursors.size(); ++id) {
      if (cursors[id].routed) fn(id, cursors[id]);
    }
  }
  size_t routedSinks() const;
  const std::string& path() const { return source ? source->path : none(); }
  const std::string& input() const { return source ? source->input : none(); }
  static const std::string& none() {
    static const std::string kNone;
    return kNone;
  }
};

// One sink and its scheduling state. Slot i of the table holds the sink whose id() is i.
struct SinkSlot {
  std::unique_ptr<outputs::Sink> sink;  // null: a free slot (the sink was removed)
  std::set<std::string> inputs;
  bool filling = false;
  uint64_t bound_file = 0;     // mid-line in this file: must continue it first
  std::set<uint64_t> pending;  // files where this sink's cursor is behind the end
  uint64_t last_served = 0;    // round robin among live files
  bool removing = false;       // reload removed it: gone once its fill in flight is back
  // Its last fill moved nothing while its pipe held bytes: the pipe is out of slots (a pipe
  // counts buffers, not bytes). Wait for the sink to drain before filling it again.
  bool wait_for_drain = false;
};

// Which sinks exist and which files are followed, keyed by dense ids: sinks by the id the table
// gives them when they are added (Sink::id(), an index into a vector), files by Follower::id().
// Names are kept for metrics and logs only; nothing on the fill path looks a name up.
//
// Sink ids are never reused: a removed sink's slot stays empty for the life of the router. A
// fill still in flight, a segment in a pipe or a stale cursor can then never be mistaken for
// another sink's, and reloads are rare enough that the empty slots cost nothing worth saving.
class RouteTable {
 public:
  // Gives the sink the next id and stores it. Returns its slot.
  SinkSlot& addSink(std::unique_ptr<outputs::Sink> sink);
  // The slot of a live (not erased) sink, or null.
  SinkSlot* slot(uint32_t id) {
    return id < sinks_.size() && sinks_[id].sink ? &sinks_[id] : nullptr;
  }
  const SinkSlot* slot(uint32_t id) const {
    return id < sinks_.size() && sinks_[id].sink ? &sinks_[id] : nullptr;
  }
  // The sink of that name not being removed (reload only; a linear search). A sink removed by
  // a reload while a fill is in flight keeps its slot until the fill is back, and a new sink of
  // the same name may already have its own.
  SinkSlot* slotByName(const std::string& name);
  // Drops the sink and its cursors in every file. Its slot stays empty.
  std::unique_ptr<outputs::Sink> eraseSink(uint32_t id);
  size_t sinkSlots() const { return sinks_.size(); }
  template <typename Fn>  // fn(uint32_t id, SinkSlot&)
  void forEachSink(Fn&& fn) {
    for (uint32_t id = 0; id < sinks_.size(); ++id) {
      if (sinks_[id].sink) fn(id, sinks_[id]);
    }
  }
  template <typename Fn>  // fn(uint32_t id, const SinkSlot&)
  void forEachSink(Fn&& fn) const {
    for (uint32_t id = 0; id < sinks_.size(); ++id) {
      if (sinks_[id].sink) fn(id, sinks_[id]);
    }
  }

  FileRoute* file(uint64_t file_id) {
    auto it = files_.find(file_id);
    return it == files_.end() ? nullptr : &it->second;
  }
  const FileRoute* file(uint64_t file_id) const {
    auto it = files_.find(file_id);
    return it == files_.end() ? nullptr : &it->second;
  }
  FileRoute& addFile(uint64_t file_id, FileRoute fs) {
    fs.id = file_id;
    return files_.insert_or_assign(file_id, std::move(fs)).first->second;
  }
  void eraseFile(uint64_t file_id) { files_.erase(file_id); }
  size_t files() const { return files_.size(); }
  std::unordered_map<uint64_t, FileRoute>& allFiles() { return files_; }
  const std::unordered_map<uint64_t, FileRoute>& allFiles() const { return files_; }

 private:
  std::vector<SinkSlot> sinks_;
  std::unordered_map<uint64_t, FileRoute> files_;
};

}  // namespace logsplice::agent
