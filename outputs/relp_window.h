#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "sys/clock.h"

namespace logsplice::outputs {

// The `syslog` frames of one RELP session that the server has not answered yet, in the order
// they were framed: each one's transaction number (consecutive, wrapping after 999,999,999 to 1),
// where its bytes end on the wire (the event sink's wire positions) and when it was framed.
// An `rsp 200` marks its frame answered; the answered prefix leaves the window and its wire end
// is what the sink reports acknowledged, so delivery advances in wire (and so file) order even
// when a server answers out of order. Pure bookkeeping, no I/O; bounded by the sink's limit on
// events in flight (one entry per framed event).
class RelpWindow {
 public:
  enum class Ack {
    kAdvanced,  // the answered prefix grew: ackedWire() moved
    kHeld,      // answered, but an older frame is still unanswered
    kUnknown,   // no such frame in the window (never sent, or answered already)
  };

  explicit RelpWindow(sys::Clock& clock = sys::Clock::real()) : clock_(clock) {}

  // A new session whose first syslog frame is `first_txnr` (wire positions start at 0).
  void reset(uint32_t first_txnr);
  // The transaction number the next frame gets.
  uint32_t nextTxnr() const { return next_txnr_; }
  // The frame numbered nextTxnr() was framed: `bytes` more on the wire.
  void framed(uint64_t bytes);
  // An `rsp 200` for `txnr`.
  Ack acknowledge(uint32_t txnr);

  size_t unanswered() const { return txns_.size(); }
  uint64_t wireFramed() const { return wire_framed_; }
  // Wire position up to which every frame was answered.
  uint64_t ackedWire() const { return acked_wire_; }
  // Wire position where frame `txnr` ends, or 0 when it is not in the window.
  uint64_t wireEndOf(uint32_t txnr) const;
  // Milliseconds since the oldest unanswered frame was framed (0 when none).
  uint64_t oldestAgeMs() const;
  // The oldest unanswered frame's number (only when unanswered() > 0).
  uint32_t oldestTxnr() const { return front_txnr_; }

 private:
  struct Txn {
    uint64_t wire_end;
    uint64_t framed_ms;
    bool answered;
  };
  // Index of `txnr` in txns_, or -1.
  long indexOf(uint32_t txnr) const;

  sys::Clock& clock_;
  std::deque<Txn> txns_;
  uint32_t front_txnr_ = 1;  // txnr of txns_.front()
  uint32_t next_txnr_ = 1;
  uint64_t wire_framed_ = 0;
  uint64_t acked_wire_ = 0;
};

}  // namespace logsplice::outputs
