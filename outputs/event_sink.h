#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <sys/uio.h>
#include <uv.h>

#include "outputs/framer.h"
#include "outputs/ring_queue.h"
#include "outputs/multiline_stage.h"
#include "outputs/sink.h"
#include "sys/sys_calls.h"
#include "sys/uv_handle.h"

namespace logsplice::outputs {

// A sink that looks at every line (docs/design.md section 2): it is fed through its pipe like a
// stream sink (same scheduling, same lockstep tee), then reads the pipe into a bounded buffer,
// cuts it into lines with memchr following the segments the router registered (which file and
// offset each run of bytes is; a '\n' the router added is a line end like any other), hands each
// line to its Framer and writes the framed bytes to its descriptor with writev.
//
// Delivery is per file and per whole event: a queue maps wire bytes (framed bytes written since
// the connection started) back to (file, offset of the event's end); when the destination has
// acknowledged wire bytes up to some point, each file is reported delivered up to the end of its
// last acknowledged whole event. When the connection breaks, each file is rewound to the first
// line of its first unacknowledged event, so a resend never starts with a fragment.
//
// Memory is bounded whatever the backlog: the sink reads out of its pipe only while its read
// buffer, its framed-but-unwritten bytes and its queue of unacknowledged events are under their
// limits; then its pipe fills up and the router stops filling it, and the backlog stays in the
// file. A line longer than the read buffer is framed in pieces (LineView::partial), delivered
// only once its last piece is acknowledged.
//
// Pieces of a line the router cut (a '\n' it added after bytes that did not end a line: a line
// longer than max_line_bytes, a final line without newline) are framed as pieces
// (LineView::piece), and so are the bytes that follow such a break in the same file.
//
// Inputs with `multiline` put their lines through a MultilineStage (setMultiline) before
// framing: one event per group of lines. A pending event is never delivered: each file is
// delivered up to the end of its last acknowledged emitted event, a broken connection rewinds a
// file to its pending event's first line (if that comes first), and at stop a pending event is
// simply not sent (its file's checkpoint is before it, so it is read again after a restart). A
// timer on the sink's loop emits the events idle for their timeout.
//
// Every byte read out of the pipe is counted in bytes_copied and sys::CopyCounter. Loop thread
// only. Subclasses provide the descriptor and the acknowledgements.
class EventSink : public Sink {
 public:
  struct Limits {
    size_t read_buffer_bytes = 256 * 1024;    // pipe bytes read out, not yet framed
    size_t max_unwritten_bytes = 512 * 1024;  // framed bytes waiting for the descriptor
    size_t max_events_in_flight = 16 * 1024;  // events framed and not yet acknowledged
  };

  EventSink(std::string name, SinkListener& listener, std::unique_ptr<Framer> framer, Limits limits,
            sys::SysCalls& sys = sys::SysCalls::real());

  // Bytes of memory the sink holds now for events (read buffer, framed bytes, event queue), and
  // the most it may ever hold.
  size_t memoryBytes() const;
  size_t memoryLimit() const;
  size_t eventsInFlight() const { return in_flight_.size(); }
  uint64_t wireWritten() const { return wire_written_; }
  const Limits& limits() const { return limits_; }
  uint64_t eventsFramed() const { return events_framed_; }
  bool multilinePending() const { return stage_ && stage_->pending(); }

  // Puts the lines of the inputs `stage` has rules for through it (null: every line is an
  // event); its idle timer runs on `loop`. Before start().
  [[nodiscard]] sys::Error setMultiline(uv_loop_t* loop, std::unique_ptr<MultilineStage> stage);

  // Sink's samples plus logsplice_events_sent_total and logsplice_event_invalid_utf8_total.
  void collectMetrics(sys::MetricWriter& w) const override;

 protected:
  void drain() override;

  // The descriptor framed bytes go to (valid while canDeliver()).
  virtual int outFd() const = 0;
  // Ask to be told (by calling drain()) when outFd() can take more.
  virtual void waitWritable(bool on) = 0;
  // A write failed with errno `err`: the subclass drops the connection (and calls rewindEvents).
  virtual void writeFailed(int err) = 0;
  // Writes framed bytes to the destination; a transport that is not the descriptor itself (TLS)
  // overrides it. Returns the framed bytes taken, or err (EAGAIN: call drain() when writable).
  virtual sys::SysResult sendFramed(const iovec* iov, int n) { return sys_.writev(outFd(), iov, n); }
  // The in-flight queue is full: learn now what the destination acknowledged, calling
  // acknowledgedWire() (not drain()).
  virtual void pollAcknowledged() {}

  // The destination acknowledged wire bytes up to `wire_pos` (counted since the connection
  // started). Reports delivery per file; true when an event left the queue.
  bool acknowledgedWire(uint64_t wire_pos);
  // The connection broke: forget every buffered, pending and unacknowledged event and ask the
  // router to resend each file from the first line of its first unacknowledged or pending event.
  void rewindEvents();
  // Stops the multiline timer (stop); pending events stay pending and are never sent.
  void stopEvents();
  // Closes the multiline timer; `then` runs once it is closed (or at once without one).
  void closeEvents(std::function<void()> then);

 private:
  struct InFlight {
    uint64_t wire_end;    // wire position just past the event's framed bytes
    uint64_t stream_end;  // pipe-stream position just past the event's bytes (and its '\n')
    uint64_t file_id;
    uint64_t generation;
    uint64_t line_start;  // file offset where the event's line starts (rewind point)
    uint64_t offset_end;  // file offset just past the event's '\n' (delivery point)
    bool complete;        // a whole event, not a piece of a long line
    bool stray;           // a '\n' that ended no line: no file to report or rewind
    bool continues;       // line_start follows a break (a rewind there resends a piece)
  };
  // A break the router made in a file: the line that starts there continues a piece.
  struct BreakMark {
    uint64_t file_id;
    uint64_t generation;
    uint64_t offset;
  };
  struct OpenLine {
    bool active = false;
    uint64_t file_id = 0;
    uint64_t generation = 0;
    uint64_t start = 0;        // file offset of the line's first byte
    uint64_t next_offset = 0;  // file offset of buf_[line_begin_]
    bool after_break = false;  // starts right after a break of the router
    std::shared_ptr<const SourceInfo> source;
  };
  class StageOutput : public MultilineStage::Output {
   public:
    explicit StageOutput(EventSink& sink) : sink_(sink) {}
    void multilineEvent(const LineView& event, uint64_t begin, uint64_t end,
                        bool complete) override {
      sink_.frameEvent(event, begin, end, complete, false);
    }

   private:
    EventSink& sink_;
  };

  // Frames lines out of the buffer until it is all scanned or a limit is reached; false when
  // it could not move.
  bool cutLines();
  bool atLimit() const;
  // The open line fills the whole buffer: it must go out in pieces.
  bool bufferFullOfOneLine() const;
  void startLine(const Segment& seg, uint64_t file_offset);
  // Frames buf_[line_begin_, end) as one event ending at file offset `offset_end` (or hands it
  // to the multiline stage); `consumed` is where the next line begins in buf_. `partial`: more
  // of the line follows in the buffer; `broken`: the router ended it with a '\n' of its own.
  void emitLine(size_t end, size_t consumed, uint64_t offset_end, bool partial, bool broken);
  // Frames one event covering file offsets [begin, end) and queues it in flight.
  void frameEvent(const LineView& v, uint64_t begin, uint64_t end, bool complete, bool continues);
  // Stream bytes up to `pos` are framed or held in a pending event: once the events framed so
  // far are acknowledged, they count as delivered.
  void accountStream(uint64_t pos);
  void noteBreak(uint64_t file_id, uint64_t generation, uint64_t offset);
  bool takeBreak(uint64_t file_id, uint64_t generation, uint64_t offset);
  void armFlushTimer();
  void onFlushTimer();
  // Queues a '\n' that ends no line (nothing to frame), so the stream still accounts for it.
  void skipByte();
  // Writes framed bytes; false when the write failed (the subclass was told).
  bool writeOut();
  // Reads from the pipe into the buffer's free space; returns the bytes read.
  size_t readPipe();
  std::string& outTail();

  std::unique_ptr<Framer> framer_;
  Limits limits_;
  sys::SysCalls& sys_;

  std::vector<char> buf_;        // read_buffer_bytes
  size_t buf_len_ = 0;           // valid bytes
  size_t scan_ = 0;              // bytes before it are cut into lines (or the open line)
  size_t line_begin_ = 0;        // first byte of the open line (== scan_ between lines)
  uint64_t buf_stream_pos_ = 0;  // stream position of buf_[0]
  OpenLine line_;

  std::deque<std::string> out_;  // framed bytes not yet written, in chunks
  size_t out_head_off_ = 0;      // bytes of out_.front() already written
  size_t unwritten_ = 0;
  uint64_t wire_framed_ = 0;
  uint64_t wire_written_ = 0;
  RingQueue<InFlight> in_flight_;  // framed, not yet acknowledged, in wire order
  uint64_t emit_stream_end_ = 0;    // stream_end of the events framed now
  uint64_t events_framed_ = 0;
  std::vector<BreakMark> breaks_;  // breaks whose following line has not started yet

  std::unique_ptr<MultilineStage> stage_;
  StageOutput stage_output_{*this};
  sys::UvHandle<uv_timer_t> flush_timer_;
  bool flush_armed_ = false;
};

}  // namespace logsplice::outputs
