#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "outputs/sink.h"

namespace logsplice::outputs {

// One line (or a piece of one), or a multiline event, as an event sink hands it to its framer.
struct LineView {
  std::string_view bytes;  // without the '\n'
  uint64_t file_id = 0;
  uint64_t generation = 0;
  uint64_t offset = 0;  // file offset of bytes[0]
  // Where the line comes from (input, path, base name); shared, never null for routed bytes.
  const SourceInfo* source = nullptr;
  // More bytes of this line follow in another piece: the line was longer than the sink's read
  // buffer. Its pieces come in order, without other lines between them. An event sink delivers
  // such a piece only with its last piece.
  bool partial = false;
  // The bytes are a piece of something longer, for the formats to mark (Event::partial): a piece
  // of a line cut by the sink's buffer (partial above), a piece the router cut at a break (a
  // line longer than max_line_bytes, a final line without newline), the bytes after such a
  // break, or a multiline event that was cut or continues one.
  bool piece = false;
};

// Turns lines into the bytes an event sink writes: octet counting, a syslog header, a JSON
// envelope. Appends to `out` (never clears it). Called on the loop thread, once per line or
// piece, in stream order.
class Framer {
 public:
  virtual ~Framer() = default;
  // A batch of lines follows (one drain, one timer tick): a framer that stamps events with the
  // time reads its clock here, once, not per line.
  virtual void beginBatch() {}
  virtual void frame(const LineView& line, std::string& out) = 0;
  // Ill-formed UTF-8 sequences replaced by U+FFFD so far (0 for a framer that never does).
  virtual uint64_t invalidUtf8() const { return 0; }
};

}  // namespace logsplice::outputs
