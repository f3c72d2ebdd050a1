#include "outputs/relp_framer.h"

#include "outputs/relp_protocol.h"

namespace logsplice::outputs {

void RelpFramer::frame(const LineView& line, std::string& out) {
  const size_t before = out.size();
  relp::appendSyslogHeader(window_.nextTxnr(), out);
  inner_->frame(line, out);
  out.push_back('\n');
  window_.framed(out.size() - before);
}

}  // namespace logsplice::outputs
