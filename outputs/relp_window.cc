#include "outputs/relp_window.h"

#include "outputs/relp_protocol.h"

namespace logsplice::outputs {

void RelpWindow::reset(uint32_t first_txnr) {
  txns_.clear();
  front_txnr_ = next_txnr_ = first_txnr;
  wire_framed_ = acked_wire_ = 0;
}

void RelpWindow::framed(uint64_t bytes) {
  if (txns_.empty()) front_txnr_ = next_txnr_;
  wire_framed_ += bytes;
  txns_.push_back({wire_framed_, clock_.monotonicMs(), false});
  next_txnr_ = relp::nextTxnr(next_txnr_);
}

long RelpWindow::indexOf(uint32_t txnr) const {
  if (txnr == 0 || txnr > relp::kMaxTxnr || txns_.empty()) return -1;
  uint64_t d =
      txnr >= front_txnr_ ? txnr - front_txnr_ : uint64_t{txnr} + relp::kMaxTxnr - front_txnr_;
  return d < txns_.size() ? static_cast<long>(d) : -1;
}

uint64_t RelpWindow::wireEndOf(uint32_t txnr) const {
  long i = indexOf(txnr);
  return i < 0 ? 0 : txns_[static_cast<size_t>(i)].wire_end;
}

RelpWindow::Ack RelpWindow::acknowledge(uint32_t txnr) {
  long i = indexOf(txnr);
  if (i < 0 || txns_[static_cast<size_t>(i)].answered) return Ack::kUnknown;
  txns_[static_cast<size_t>(i)].answered = true;
  if (i != 0) return Ack::kHeld;
  while (!txns_.empty() && txns_.front().answered) {
    acked_wire_ = txns_.front().wire_end;
    txns_.pop_front();
    front_txnr_ = relp::nextTxnr(front_txnr_);
  }
  return Ack::kAdvanced;
}

uint64_t RelpWindow::oldestAgeMs() const {
  if (txns_.empty()) return 0;
  uint64_t now = clock_.monotonicMs();
  return now > txns_.front().framed_ms ? now - txns_.front().framed_ms : 0;
}

}  // namespace logsplice::outputs
