#include "outputs/format/json.h"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "outputs/format/utf8.h"

namespace logsplice::outputs::format {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Nonzero when a byte of `w` is zero (exact as a yes/no answer).
constexpr uint64_t hasZero(uint64_t w) {
  return (w - kOnes) & ~w & kHighs;
}

// Nonzero when a byte of `w` needs attention: below 0x20, '"', '\' or non-ASCII (>= 0x80).
constexpr uint64_t needsWork(uint64_t w) {
  return hasZero(w & (kOnes * 0xE0)) |  // a byte with none of the bits 0xE0 is below 0x20
         hasZero(w ^ (kOnes * '"')) | hasZero(w ^ (kOnes * '\\')) | (w & kHighs);
}

// The length of the leading run of `p[0..n)` that can be copied as it is.
size_t plainRun(const char* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    if (needsWork(word)) break;
  }
  for (; i < n; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
  }
  return i;
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

size_t appendJsonString(std::string_view text, std::string& out) {
  size_t replaced = 0;
  const char* p = text.data();
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t run = plainRun(p + i, n - i);
    out.append(p + i, run);
    i += run;
    if (i >= n) break;
    auto c = static_cast<unsigned char>(p[i]);
    if (c >= 0x80) {
      utf8::Sequence seq = utf8::decode(reinterpret_cast<const unsigned char*>(p) + i, n - i);
      if (seq.valid) {
        out.append(p + i, seq.length);
      } else {
        out.append(utf8::kReplacement);
        ++replaced;
      }
      i += seq.length;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, sizeof(esc));
      }
    }
    ++i;
  }
  return replaced;
}

JsonFormatter::JsonFormatter(const EventContext& context) {
  host_ = "\",\"host\":\"";
  (void)appendJsonString(context.host, host_);
  host_ += "\",\"input\":\"";
  (void)appendJsonString(context.input, host_);
  host_ += "\",\"file\":\"";
  for (const FieldPair& field : context.fields) {
    fields_ += ",\"";
    (void)appendJsonString(field.first, fields_);
    fields_ += "\":\"";
    (void)appendJsonString(field.second, fields_);
    fields_ += '"';
  }
}

size_t JsonFormatter::append(const Event& event, std::string& out) {
  // Escaping grows a string at most 6x; reserve for the common, nearly-plain case and let the
  // string grow geometrically otherwise.
  out.reserve(out.size() + 64 + TimestampWriter::kLength + host_.size() + event.file.size() +
              event.message.size() + fields_.size() + 16);
  out += "{\"timestamp\":\"";
  timestamp_.append(event.read_time_us, out);
  out += host_;
  size_t replaced = appendJsonString(event.file, out);
  out += "\",\"offset\":";
  char digits[24];
  auto result = std::to_chars(digits, digits + sizeof(digits), event.offset);
  out.append(digits, result.ptr);
  out += ",\"message\":\"";
  replaced += appendJsonString(event.message, out);
  out += '"';
  out += fields_;
  if (event.partial) out += ",\"partial\":true";
  out += "}\n";
  return replaced;
}

}  // namespace logsplice::outputs::format
