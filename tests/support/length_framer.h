#pragma once

// The smallest event framing, to prove the event-sink interface in tests: each line as
// "<decimal length> <bytes>" (RFC 6587 octet counting), with no header. A TcpEventSink with
// this framer is the "length event sink" of the outputs tests. parseFrames() is the collector's
// side: it cuts what arrived into whole frames and says how many bytes a trailing fragment has.

#include <cstddef>
#include <string>
#include <vector>

#include "outputs/framer.h"

namespace logsplice::testing {

class LengthFramer : public outputs::Framer {
 public:
  struct Seen {
    uint64_t file_id, offset;
    std::string bytes;
    bool partial;
    std::string input;
  };
  std::vector<Seen>* seen = nullptr;  // when set, every LineView handed in is recorded

  void frame(const outputs::LineView& line, std::string& out) override {
    if (seen) {
      seen->push_back({line.file_id, line.offset, std::string(line.bytes), line.partial,
                       line.source ? line.source->input : std::string()});
    }
    out += std::to_string(line.bytes.size());
    out += ' ';
    out.append(line.bytes.data(), line.bytes.size());
  }
};

// Whole frames in `wire`, in order; *rest (if given) is the byte count of a trailing fragment.
// A malformed frame ends the parse (everything from it counts as rest).
inline std::vector<std::string> parseFrames(const std::string& wire, size_t* rest = nullptr) {
  std::vector<std::string> frames;
  size_t pos = 0;
  while (pos < wire.size()) {
    size_t sp = wire.find(' ', pos);
    if (sp == std::string::npos || sp == pos || sp - pos > 12) break;
    size_t len = 0;
    bool digits = true;
    for (size_t i = pos; i < sp; ++i) {
      if (wire[i] < '0' || wire[i] > '9') digits = false;
      len = len * 10 + static_cast<size_t>(wire[i] - '0');
    }
    if (!digits || sp + 1 + len > wire.size()) break;
    frames.push_back(wire.substr(sp + 1, len));
    pos = sp + 1 + len;
  }
  if (rest) *rest = wire.size() - pos;
  return frames;
}

}  // namespace logsplice::testing
