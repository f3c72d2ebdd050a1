#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace logsplice::outputs::mirror {

// The wire protocol between a `type: logsplice` output and `logsplice collect`
// (docs/protocol.md is the reference; this is its codec, shared by both ends). Every message is
// a fixed 24-byte little-endian header, then `length` bytes: a control body for every type but
// kData, whose `length` bytes are the file's bytes, spliced unchanged. Pure code: no I/O.

constexpr uint16_t kVersion = 1;
constexpr char kMagic[4] = {'L', 'S', 'P', 'L'};  // first bytes of a hello body
constexpr size_t kHeaderBytes = 24;
// A control body is at most this long; more is a protocol error (bounded buffers).
constexpr uint32_t kMaxControlBody = 8192;
// Hard cap on a data frame, whatever the collector's config says.
constexpr uint64_t kMaxFrameHardCap = 64ull << 20;
constexpr size_t kMaxHostBytes = 253;
constexpr size_t kMaxInputBytes = 255;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxTokenBytes = 512;
constexpr size_t kMaxInstanceBytes = 64;
constexpr size_t kMaxReasonBytes = 1024;

enum class Type : uint8_t {
  kHello = 1,      // agent -> collector: session start
  kHelloOk = 2,    // collector -> agent: accepted
  kOpen = 3,       // agent -> collector: a stream (one source file generation)
  kOpened = 4,     // collector -> agent: offset = durable length held
  kData = 5,       // agent -> collector: file bytes at offset
  kAck = 6,        // collector -> agent: offset = durable end of the stream
  kClose = 7,      // agent -> collector: the stream is done on this connection
  kKeepalive = 8,  // either way: nothing to say
  kError = 9,      // either way: offset = error code, body = reason; the sender then closes
};

enum class ErrorCode : uint64_t {
  kProtocol = 1,   // malformed message, unknown type, bad order
  kVersion = 2,    // unsupported protocol version
  kAuth = 3,       // wrong token or unknown host
  kLimit = 4,      // a limit of the collector was exceeded (frame, streams, connections)
  kGap = 5,        // a data frame starts past the stream's end
  kBadStream = 6,  // unknown stream id, or an OPEN the collector refused
  kTimeout = 7,    // the peer stalled
  kStorage = 8,    // the collector cannot store (not disk full: that only pauses)
  kShutdown = 9,   // the collector stops
};

struct Header {
  Type type = Type::kKeepalive;
  uint32_t stream = 0;  // 0 for session messages
  uint64_t offset = 0;  // type-specific value (data: file offset)
  uint64_t length = 0;  // bytes after the header
};

void encodeHeader(const Header& h, char out[kHeaderBytes]);
// Decodes a header; nullopt when the reserved bytes are not 0 or the type is unknown.
std::optional<Header> decodeHeader(const char in[kHeaderBytes]);
// Whether a header's length is acceptable before anything of its body is read: a control body
// within kMaxControlBody (0 for keepalive), a data frame within max_frame.
bool lengthAllowed(const Header& h, uint64_t max_frame);

struct Hello {
  uint16_t version = kVersion;
  std::string host;
  std::string instance;
  std::string token;
};
struct HelloOk {
  uint16_t version = kVersion;
  uint32_t idle_timeout_ms = 0;  // send something at least this often
  uint64_t max_frame = 0;        // the largest data frame accepted
  uint32_t max_streams = 0;      // streams the connection may have open at once
};
struct Open {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t fingerprint = 0;
  uint32_t fingerprint_len = 0;
  uint64_t generation = 0;
  std::string input;
  std::string path;
};

// Whole messages (header + body) ready to send.
std::string encodeHello(const Hello& m);
std::string encodeHelloOk(const HelloOk& m);
std::string encodeOpen(uint32_t stream, const Open& m);
std::string encodeSimple(Type type, uint32_t stream, uint64_t offset);  // opened, ack, close...
std::string encodeError(ErrorCode code, std::string_view reason);

// Body decoders: nullopt on a malformed body (truncated, trailing bytes, over-long strings,
// bad magic). `why` says what was wrong, for the log.
std::optional<Hello> decodeHello(std::string_view body, std::string* why);
std::optional<HelloOk> decodeHelloOk(std::string_view body, std::string* why);
std::optional<Open> decodeOpen(std::string_view body, std::string* why);

// A host or input name from the wire: 1..max bytes of [A-Za-z0-9._-], not starting with '.'
// (so never "." or ".." and never a hidden file), safe as one path component.
bool validName(std::string_view name, size_t max);
// A source path from the wire: 1..kMaxPathBytes, absolute, no NUL.
bool validSourcePath(std::string_view path);

}  // namespace logsplice::outputs::mirror
