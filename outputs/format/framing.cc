#include "outputs/format/framing.h"

#include <charconv>

namespace logsplice::outputs::format {
namespace {

// "LEN " into `buf`; returns its length.
size_t writePrefix(size_t length, char (&buf)[24]) {
  auto result = std::to_chars(buf, buf + sizeof(buf) - 1, length);
  *result.ptr = ' ';
  return static_cast<size_t>(result.ptr - buf) + 1;
}

}  // namespace

size_t octetCountPrefixLength(size_t length) {
  char buf[24];
  return writePrefix(length, buf);
}

void appendFramed(Framing framing, std::string_view message, std::string& out) {
  if (framing == Framing::kLf) {
    out.reserve(out.size() + message.size() + 1);
    out += message;
    out += '\n';
    return;
  }
  char buf[24];
  size_t n = writePrefix(message.size(), buf);
  out.reserve(out.size() + n + message.size());
  out.append(buf, n);
  out += message;
}

void frameInPlace(Framing framing, std::string& out, size_t start) {
  if (framing == Framing::kLf) {
    out += '\n';
    return;
  }
  char buf[24];
  size_t n = writePrefix(out.size() - start, buf);
  out.insert(start, buf, n);
}

}  // namespace logsplice::outputs::format
