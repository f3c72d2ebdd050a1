#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "outputs/format/regex.h"

namespace logsplice::outputs::format {

// One event put together from one or more lines of one file.
struct MultilineEvent {
  std::string_view text;  // the lines joined with '\n', no trailing newline; valid during the call
  uint64_t begin = 0;     // file offset of its first byte
  uint64_t end = 0;       // file offset just past its last line (its newline included)
  // The event reached max_bytes: it was emitted early and the next event carries on with the
  // lines that followed (`continued`).
  bool cut = false;
  // The event does not begin with a start line: it continues a cut event, or holds lines read
  // before any start line was seen (a file that does not begin with one, a pattern that never
  // matches, lines arriving after the timeout sent their event).
  bool continued = false;

  // Whether the formats should mark it as a piece of something longer (Event::partial).
  bool partial() const { return cut || continued; }
};

// A non-owning reference to a callable `void(const MultilineEvent&)`: no allocation per call.
class EmitRef {
 public:
  // `f` (a temporary lambda too) must outlive the call EmitRef is passed to.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, EmitRef>>>
  EmitRef(F&& f)  // NOLINT: implicit by design, like std::function_ref
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, const MultilineEvent& e) {
          (*static_cast<std::remove_reference_t<F>*>(o))(e);
        }) {}
  void operator()(const MultilineEvent& event) const { call_(object_, event); }

 private:
  void* object_;
  void (*call_)(void*, const MultilineEvent&);
};

struct MultilineOptions {
  std::chrono::milliseconds timeout{1000};  // emit a pending event after this long idle
  uint64_t max_bytes = 1024 * 1024;         // most bytes one event (and the buffer) holds
};

// Puts the complete lines of ONE file together into events. A line on which `start` matches
// begins a new event; any other line joins the current one with '\n'. The pending event is
// emitted when:
// - the next start line arrives;
// - a line would take it past max_bytes: the event is emitted as it is (`cut`), and that line
//   begins the next event (`continued`); a single line longer than max_bytes is emitted alone,
//   whole, straight from the caller's view (it is never buffered);
// - the file was idle for `timeout` (flushIdle, called by the sink with the time now: the
//   assembler has no timers), or the sink flushes it (file closed, shutdown).
// Each event carries the file offsets of its first byte and just past its last line, so an
// acknowledgement maps back to the file and a restart re-reads from the first line of the first
// unacknowledged event. At most max_bytes are held, in one buffer reused from event to event
// (released after an event larger than 64 KiB).
// Not thread-safe; the Regex is shared by the assemblers of one sink and input.
class MultilineAssembler {
 public:
  using Clock = std::chrono::steady_clock;

  MultilineAssembler(Regex& start, MultilineOptions options);

  // One complete line, without its newline, read at file offsets [begin, end) (`end` counts
  // the newline). `piece` is true for the second and later pieces of a line the sink split at
  // max_line_bytes: it never starts an event and joins the previous piece without '\n'.
  // Calls `emit` zero, one or two times.
  void push(std::string_view line, uint64_t begin, uint64_t end, Clock::time_point now,
            EmitRef emit, bool piece = false);

  // Emits the pending event if nothing was pushed for `timeout`; returns whether it did.
  bool flushIdle(Clock::time_point now, EmitRef emit);
  // Emits the pending event, if any.
  void flush(EmitRef emit);

  bool pending() const { return has_pending_; }
  size_t bufferCapacity() const { return buffer_.capacity(); }  // for tests: the memory bound
  // When flushIdle will emit the pending event (meaningless when !pending()).
  Clock::time_point deadline() const { return last_push_ + options_.timeout; }
  // File offset of the first byte not yet emitted (the pending event's first line): where a
  // restart must read from if nothing later is acknowledged.
  uint64_t pendingBegin() const { return begin_; }

 private:
  void start(std::string_view line, uint64_t begin, uint64_t end, bool continued);
  void reserveFor(size_t size);
  void release();  // after an emit: no pending event, a large buffer freed

  Regex& start_;
  MultilineOptions options_;
  std::string buffer_;
  bool has_pending_ = false;
  bool continued_ = false;
  uint64_t begin_ = 0;
  uint64_t end_ = 0;
  Clock::time_point last_push_{};
};

}  // namespace logsplice::outputs::format
