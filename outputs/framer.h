#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "outputs/sink.h"

namespace logsplice::outputs {

// One line (or a piece of one) as an event sink hands it to its framer.
struct LineView {
  std::string_view bytes;  // without the '\n'
  uint64_t file_id = 0;
  uint64_t generation = 0;
  uint64_t offset = 0;  // file offset of bytes[0]
  // Where the line comes from (input, path, base name); shared, never null for routed bytes.
  const SourceInfo* source = nullptr;
  // More bytes of this line follow in another piece: the line was longer than the sink's read
  // buffer. Its pieces come in order, without other lines between them.
  bool partial = false;
};

// Turns lines into the bytes an event sink writes: octet counting, a syslog header, a JSON
// envelope. Appends to `out` (never clears it). Called on the loop thread, once per line or
// piece, in stream order.
class Framer {
 public:
  virtual ~Framer() = default;
  virtual void frame(const LineView& line, std::string& out) = 0;
};

}  // namespace logsplice::outputs
