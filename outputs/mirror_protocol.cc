#include "outputs/mirror_protocol.h"

#include <cstring>

namespace logsplice::outputs::mirror {
namespace {

void putU16(std::string& s, uint16_t v) {
  for (int i = 0; i < 2; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putU32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putStr(std::string& s, std::string_view v) {
  putU16(s, static_cast<uint16_t>(v.size()));
  s.append(v);
}

uint64_t getLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Reads a body field by field; any read past the end marks it bad.
class Reader {
 public:
  explicit Reader(std::string_view body) : b_(body) {}
  uint64_t num(int n) {
    if (!bad_ && b_.size() - pos_ >= static_cast<size_t>(n)) {
      uint64_t v = getLE(b_.data() + pos_, n);
      pos_ += static_cast<size_t>(n);
      return v;
    }
    bad_ = true;
    return 0;
  }
  std::string str(size_t max, const char* what, std::string* why) {
    size_t len = num(2);
    if (bad_) return {};
    if (len > max) {
      bad_ = true;
      if (why) *why = std::string(what) + " longer than " + std::to_string(max) + " bytes";
      return {};
    }
    if (b_.size() - pos_ < len) {
      bad_ = true;
      return {};
    }
    std::string s(b_.substr(pos_, len));
    pos_ += len;
    return s;
  }
  std::string_view raw(size_t n) {
    if (bad_ || b_.size() - pos_ < n) {
      bad_ = true;
      return {};
    }
    std::string_view v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  // All read, nothing left over.
  bool done(std::string* why) {
    if (!bad_ && pos_ != b_.size()) {
      bad_ = true;
      if (why && why->empty()) *why = "trailing bytes in the body";
    }
    if (bad_ && why && why->empty()) *why = "truncated body";
    return !bad_;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  bool bad_ = false;
};

std::string withHeader(Type type, uint32_t stream, uint64_t offset, const std::string& body) {
  std::string out(kHeaderBytes, '\0');
  encodeHeader(Header{type, stream, offset, body.size()}, out.data());
  out += body;
  return out;
}

}  // namespace

void encodeHeader(const Header& h, char out[kHeaderBytes]) {
  std::string s;
  s.push_back(static_cast<char>(h.type));
  s.append(3, '\0');
  putU32(s, h.stream);
  putU64(s, h.offset);
  putU64(s, h.length);
  std::memcpy(out, s.data(), kHeaderBytes);
}

std::optional<Header> decodeHeader(const char in[kHeaderBytes]) {
  auto type = static_cast<uint8_t>(in[0]);
  if (in[1] != 0 || in[2] != 0 || in[3] != 0) return std::nullopt;
  if (type < static_cast<uint8_t>(Type::kHello) || type > static_cast<uint8_t>(Type::kError)) {
    return std::nullopt;
  }
  Header h;
  h.type = static_cast<Type>(type);
  h.stream = static_cast<uint32_t>(getLE(in + 4, 4));
  h.offset = getLE(in + 8, 8);
  h.length = getLE(in + 16, 8);
  return h;
}

bool lengthAllowed(const Header& h, uint64_t max_frame) {
  if (h.type == Type::kData) return h.length > 0 && h.length <= max_frame;
  if (h.type == Type::kKeepalive) return h.length == 0;
  return h.length <= kMaxControlBody;
}

std::string encodeHello(const Hello& m) {
  std::string b(kMagic, sizeof kMagic);
  putU16(b, m.version);
  putStr(b, m.host);
  putStr(b, m.instance);
  putStr(b, m.token);
  return withHeader(Type::kHello, 0, 0, b);
}

std::string encodeHelloOk(const HelloOk& m) {
  std::string b;
  putU16(b, m.version);
  putU32(b, m.idle_timeout_ms);
  putU64(b, m.max_frame);
  putU32(b, m.max_streams);
  return withHeader(Type::kHelloOk, 0, 0, b);
}

std::string encodeOpen(uint32_t stream, const Open& m) {
  std::string b;
  putU64(b, m.dev);
  putU64(b, m.ino);
  putU64(b, m.fingerprint);
  putU32(b, m.fingerprint_len);
  putU64(b, m.generation);
  putStr(b, m.input);
  putStr(b, m.path);
  return withHeader(Type::kOpen, stream, 0, b);
}

std::string encodeSimple(Type type, uint32_t stream, uint64_t offset) {
  return withHeader(type, stream, offset, std::string());
}

std::string encodeError(ErrorCode code, std::string_view reason) {
  std::string b(reason.substr(0, kMaxReasonBytes));
  return withHeader(Type::kError, 0, static_cast<uint64_t>(code), b);
}

std::optional<Hello> decodeHello(std::string_view body, std::string* why) {
  Reader r(body);
  std::string_view magic = r.raw(sizeof kMagic);
  if (magic.size() == sizeof kMagic && std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0) {
    if (why) *why = "bad magic (not a logsplice agent)";
    return std::nullopt;
  }
  Hello m;
  m.version = static_cast<uint16_t>(r.num(2));
  m.host = r.str(kMaxHostBytes, "host", why);
  m.instance = r.str(kMaxInstanceBytes, "instance id", why);
  m.token = r.str(kMaxTokenBytes, "token", why);
  if (!r.done(why)) return std::nullopt;
  return m;
}

std::optional<HelloOk> decodeHelloOk(std::string_view body, std::string* why) {
  Reader r(body);
  HelloOk m;
  m.version = static_cast<uint16_t>(r.num(2));
  m.idle_timeout_ms = static_cast<uint32_t>(r.num(4));
  m.max_frame = r.num(8);
  m.max_streams = static_cast<uint32_t>(r.num(4));
  if (!r.done(why)) return std::nullopt;
  return m;
}

std::optional<Open> decodeOpen(std::string_view body, std::string* why) {
  Reader r(body);
  Open m;
  m.dev = r.num(8);
  m.ino = r.num(8);
  m.fingerprint = r.num(8);
  m.fingerprint_len = static_cast<uint32_t>(r.num(4));
  m.generation = r.num(8);
  m.input = r.str(kMaxInputBytes, "input", why);
  m.path = r.str(kMaxPathBytes, "path", why);
  if (!r.done(why)) return std::nullopt;
  return m;
}

bool validName(std::string_view name, size_t max) {
  if (name.empty() || name.size() > max || name.front() == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool validSourcePath(std::string_view path) {
  return !path.empty() && path.size() <= kMaxPathBytes && path.front() == '/' &&
         path.find('\0') == std::string_view::npos;
}

}  // namespace logsplice::outputs::mirror
