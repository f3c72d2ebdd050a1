#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sys/metrics.h"
#include "sys/pipe.h"

namespace logsplice::outputs {

// What a sink may want to know of the file a segment comes from: the archive names its files by
// input and source name; event sinks put the host's input, path and offset into each event.
struct SourceInfo {
  std::string input;        // the input's name
  std::string path;         // the path the file had when it was first seen
  std::string source_name;  // its base name (archive naming)
  // Who the file is when first seen (inputs::FileIdentity): the mirror output names its
  // streams by it (docs/protocol.md).
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t fingerprint = 0;
  uint32_t fingerprint_len = 0;
};

// A run of one source file's bytes that the router put into a sink's pipe, in order. `newline`
// is 1 when the router wrote a '\n' after the bytes (a split long line or a final line without
// newline): that byte is in the pipe but not in the file.
struct Segment {
  uint64_t file_id = 0;
  uint64_t generation = 0;     // the file's truncation generation when the bytes were read
  uint64_t offset = 0;         // file offset of the first byte
  uint64_t length = 0;         // file bytes
  uint32_t newline = 0;        // extra bytes written after them (0 or 1)
  bool ends_line = true;       // the last byte (or the added newline) ends a line (router sets it)
  bool newline_first = false;  // a '\n' owed from an earlier segment precedes the bytes
  // Where the bytes come from, shared by every segment of the file (no per-segment strings).
  std::shared_ptr<const SourceInfo> source;

  uint64_t streamBytes() const { return length + newline + (newline_first ? 1 : 0); }
};

class Sink;

// Where a sink reports to. Implemented by the router; loop thread only. The sink passes itself:
// the router finds its slot by the sink's dense id, never by name.
class SinkListener {
 public:
  virtual ~SinkListener() = default;
  // The sink durably delivered file bytes up to `offset_end` of file_id (written to the archive,
  // or acknowledged by the collector's TCP stack).
  virtual void sinkDelivered(Sink& sink, uint64_t file_id, uint64_t generation,
                             uint64_t offset_end) = 0;
  // The pipe has room again, or the sink became ready: the router may fill it.
  virtual void sinkReady(Sink& sink) = 0;
  // The connection broke. Everything the pipe held is gone; each (file, offset) pair is where the
  // sink must resend from (the earliest unacknowledged byte of that file, at a line start when
  // the router can find one).
  struct Rewind {
    uint64_t file_id;
    uint64_t generation;
    uint64_t offset;
    bool newline_owed;  // the '\n' for a break at `offset` was never acknowledged
  };
  virtual void sinkRewound(Sink& sink, const std::vector<Rewind>& rewinds) = 0;
  // The sink's destination already holds file_id up to `offset` (a mirror collector answering
  // a stream's durable length): the router may move the sink's cursor forward to the line
  // start at or before it instead of reading those bytes again. A hint: bytes below `offset`
  // that still reach the sink are its to drop.
  virtual void sinkHolds(Sink& /*sink*/, uint64_t /*file_id*/, uint64_t /*generation*/,
                         uint64_t /*offset*/) {}
};

enum class SinkState { kConnecting, kConnected, kBackoff, kPaused, kStopped };
const char* sinkStateName(SinkState s);

struct SinkStats {
  uint64_t bytes_sent = 0;  // stream bytes into the fd (socket or archive file)
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  uint64_t resent_bytes = 0;
  uint64_t pauses = 0;
  uint64_t missed_bytes = 0;  // set by the router (retention released a file the sink lagged on)
  // Bytes moved through the agent's own memory on their way to this sink (read/write fallback,
  // added newlines, and everything an event sink reads out of its pipe to frame it).
  uint64_t bytes_copied = 0;
};

// A destination fed through its own pipe: the router fills the pipe (on the I/O thread) and then
// calls appended() on the loop thread with what it put there; the sink drains the pipe at its own
// pace and reports delivery. How the bytes leave the pipe is the subclass's business
// (docs/design.md section 2): a StreamSink (stream_sink.h) splices them into a descriptor
// unchanged, an EventSink (event_sink.h) reads them out, cuts lines and frames them. The router
// sees only this interface. Loop thread only, except that the pipe's write end
// is used by the I/O thread while a fill is in flight. Verbs as libuv: start, stop, close.
class Sink {
 public:
  Sink(std::string name, SinkListener& listener) : name_(std::move(name)), listener_(listener) {}
  virtual ~Sink() = default;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  const std::string& name() const { return name_; }
  // Dense id given by the router when the sink is added (index into its route table).
  uint32_t id() const { return id_; }
  void setId(uint32_t id) { id_ = id; }
  sys::Pipe& pipe() { return pipe_; }
  const sys::Pipe& pipe() const { return pipe_; }
  const SinkStats& stats() const { return stats_; }
  SinkStats& mutableStats() { return stats_; }
  virtual SinkState state() const = 0;

  // Whether the sink takes new bytes now: it can deliver (connected / not paused) and its pipe
  // has at least `want` bytes of room.
  bool acceptsData(uint64_t want) const;
  // Bytes in the pipe, not yet written to the fd.
  uint64_t inPipe() const { return stream_filled_ - stream_written_; }
  // Bytes the pipe can take now (0 when the sink cannot deliver).
  uint64_t room() const;
  // Bytes in the pipe or sent but not yet delivered.
  uint64_t pendingBytes() const { return stream_filled_ - stream_delivered_; }
  // Whether any segment of file_id is still in the pipe or unacknowledged.
  bool holdsFile(uint64_t file_id) const;

  // Bumped when the pipe's content is thrown away (a broken connection): a fill that was in
  // flight then must be discarded by the router (see discardPipe).
  uint64_t epoch() const { return epoch_; }
  // Records a segment the router just put in the pipe and starts draining (unless held).
  void appended(Segment seg);
  // While held, appended() only records: the router holds every sink during a scheduling pass
  // and releases them after it, so the fills of several files (or several chunks) leave in one
  // write instead of one each.
  // A held sink still drains at once when its pipe has less than `min_room` bytes of room, so
  // a small pipe does not fall out of a lockstep group.
  void holdDrain(uint64_t min_room) {
    hold_drain_ = true;
    hold_min_room_ = min_room;
  }
  void releaseDrain();

  // Learns what the peer has acknowledged by now (TCP: SIOCOUTQ) and reports it. Sinks that
  // deliver on write have nothing to learn. Called before a checkpoint or a detach, so that
  // what is recorded is current, not up to one ack poll old.
  virtual void refreshDelivery() {}

  virtual sys::Error start() = 0;
  // Stops delivering; what is in the pipe stays there (and is not acknowledged).
  virtual void stop() = 0;
  // on_closed runs once every libuv handle of the sink has closed (its memory freed), so that
  // uv_loop_close() succeeds afterwards.
  virtual void close(std::function<void()> on_closed) = 0;

  // Adds this sink's samples (label sink="<name>", and output="<name>" for the copy count).
  virtual void collectMetrics(sys::MetricWriter& w) const;

 protected:
  // Drain the pipe into the fd; called after appended() and when the fd is writable.
  virtual void drain() = 0;
  virtual bool canDeliver() const = 0;
  // How many of seg's file bytes count as delivered when `stream_into` of its stream bytes are.
  static uint64_t deliveredFileBytes(const Segment& seg, uint64_t stream_into);
  // Marks stream bytes up to `stream_pos` delivered, reporting per-file offsets to the router.
  void deliveredUpTo(uint64_t stream_pos);
  // The connection broke: throws away the pipe's content and the unacknowledged segments, and
  // asks the router to resend from the earliest unacknowledged offset of each file.
  void rewindUnacknowledged();
  // The earliest unacknowledged offset of each file, from segments_ and stream_delivered_.
  std::vector<SinkListener::Rewind> streamRewindPoints() const;
  // Forgets everything in flight (counts it as resent), empties the pipe, bumps the epoch and
  // reports `rewinds` (if any) to the router.
  void dropInFlight(const std::vector<SinkListener::Rewind>& rewinds);

 public:
  // Empties the pipe without copying (splice to /dev/null).
  void discardPipe();

 protected:
  // Bytes registered in the pipe and not yet written to the fd: the most a drain may move
  // (the pipe can hold more, from a fill whose completion has not been processed yet).
  uint64_t drainable() const { return stream_filled_ - stream_written_; }

  std::string name_;
  uint32_t id_ = 0;
  SinkListener& listener_;
  sys::Pipe pipe_;
  SinkStats stats_;
  std::deque<Segment> segments_;   // not yet fully delivered, in stream order
  uint64_t stream_filled_ = 0;     // stream bytes appended to the pipe
  uint64_t stream_written_ = 0;    // stream bytes moved from the pipe into the fd
  uint64_t stream_delivered_ = 0;  // stream bytes delivered (acked / written)
  uint64_t head_stream_pos_ = 0;   // stream position of segments_.front()
  uint64_t epoch_ = 0;
  bool hold_drain_ = false;
  uint64_t hold_min_room_ = 0;
};

}  // namespace logsplice::outputs
