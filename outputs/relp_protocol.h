#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace logsplice::outputs::relp {

// RELP, the Reliable Event Logging Protocol (rsyslog's): every frame is
//   TXNR SP COMMAND SP DATALEN [SP DATA] LF
// TXNR 1..999,999,999 (0 is a server hint such as `serverclose`), COMMAND a short word, DATALEN
// the decimal byte count of DATA (no DATA when 0). The client opens a session with `open`
// (txnr 1, its offers as DATA), sends `syslog` frames (one message each) and ends with `close`;
// the server answers each command with an `rsp` frame carrying the command's txnr and
// "CODE SP TEXT [LF DATA]" (200 = taken, anything else = refused).
//
// Everything here is pure (no I/O): the sink feeds what the server sent and writes what these
// functions build.

constexpr uint32_t kMaxTxnr = 999'999'999;
// Transaction numbers after `txnr`: they wrap to 1, never to the hint number 0.
constexpr uint32_t nextTxnr(uint32_t txnr) {
  return txnr >= kMaxTxnr ? 1 : txnr + 1;
}

// What this client says in its `open`: version 0 (what librelp speaks), who it is, and that it
// sends `syslog` commands only.
std::string openOffers();

// Appends one complete frame.
void appendFrame(uint32_t txnr, std::string_view command, std::string_view data, std::string& out);

// The frame header of a syslog command whose DATA the caller appends next: "TXNR syslog ".
// The syslog octet-counting framing ("LEN SP MSG") is exactly "DATALEN SP DATA", so the event
// encoder's octet-counted output follows this header unchanged, and a '\n' ends the frame.
void appendSyslogHeader(uint32_t txnr, std::string& out);

// One frame from the server. `data` views the parser's buffer: valid until the next feed().
struct Frame {
  uint32_t txnr = 0;
  std::string_view command;
  std::string_view data;
};

// Cuts what the server sends into frames. Every byte is treated as hostile: numbers are digits
// only and at most 9 of them, the command at most 32 letters, DATA at most kMaxDataBytes (an
// `rsp` carries a status line and, for `open`, a few offers); anything else is an error and the
// parser stays failed (the session is dropped, nothing is guessed).
class Parser {
 public:
  static constexpr size_t kMaxDataBytes = 64 * 1024;
  static constexpr size_t kMaxCommandBytes = 32;

  enum class Result { kFrame, kNeedMore, kError };

  // Adds bytes the server sent (copied; bounded by one frame plus what one read brings).
  void feed(const char* data, size_t len);
  // The next complete frame into `frame`; kNeedMore when it has not all arrived.
  Result next(Frame& frame);
  const std::string& error() const { return error_; }
  void reset();

 private:
  Result fail(std::string why);

  std::string buf_;
  size_t pos_ = 0;  // bytes of buf_ already returned as frames
  std::string error_;
};

// The DATA of an `rsp`: "CODE SP TEXT [LF DATA]". False for anything else (not 3 digits, no
// space after them).
struct Rsp {
  int code = 0;
  std::string_view text;  // the human-readable text (to log)
  std::string_view data;  // after the first LF: the server's offers for `open`
};
bool parseRsp(std::string_view data, Rsp& rsp);

// True when `offers` (LF-separated "name=value,value") offer command `command` in `commands=`.
bool offersCommand(std::string_view offers, std::string_view command);

// Text from the server made safe to log: at most `max` bytes, control bytes and non-ASCII
// shown as '?'.
std::string printable(std::string_view text, size_t max = 200);

}  // namespace logsplice::outputs::relp
