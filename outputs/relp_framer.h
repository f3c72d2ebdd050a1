#pragma once

#include <memory>
#include <string>

#include "outputs/framer.h"
#include "outputs/relp_window.h"

namespace logsplice::outputs {

// The framer of a relp output: each event becomes one RELP `syslog` frame,
//   "TXNR syslog DATALEN SP MSG\n"
// where "DATALEN SP MSG" is the inner framer's output: an RFC 5424 message with syslog
// octet-counting framing, whose "LEN SP" is exactly RELP's "DATALEN SP". The frame takes the
// window's next transaction number and is recorded there with its size, so an `rsp` for that
// number maps back to the wire position where the event ends.
class RelpFramer : public Framer {
 public:
  // `inner` must frame with octet counting (an EventFramer of format syslog).
  RelpFramer(std::unique_ptr<Framer> inner, RelpWindow& window)
      : inner_(std::move(inner)), window_(window) {}

  void beginBatch() override { inner_->beginBatch(); }
  void frame(const LineView& line, std::string& out) override;
  uint64_t invalidUtf8() const override { return inner_->invalidUtf8(); }

 private:
  std::unique_ptr<Framer> inner_;
  RelpWindow& window_;
};

}  // namespace logsplice::outputs
