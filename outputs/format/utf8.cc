#include "outputs/format/utf8.h"

#include <cstdint>
#include <cstring>

namespace logsplice::outputs::format::utf8 {
namespace {

bool isContinuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

}  // namespace

Sequence decode(const unsigned char* p, size_t n) {
  unsigned char b0 = p[0];
  if (b0 < 0x80) return {1, true};
  size_t need = 0;
  // The bounds of the second byte; the later ones are always 80..BF.
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // below is an overlong 2-byte value
    if (b0 == 0xED) hi = 0x9F;  // above are the UTF-16 surrogates D800..DFFF
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {1, false};  // a continuation byte, C0/C1 (always overlong) or F5..FF
  }
  if (n < 2 || p[1] < lo || p[1] > hi) return {1, false};
  for (size_t i = 2; i <= need; ++i) {
    if (i >= n || !isContinuation(p[i])) return {i, false};
  }
  return {need + 1, true};
}

size_t asciiPrefix(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    if (word & 0x8080808080808080ULL) break;
  }
  while (i < n && static_cast<unsigned char>(p[i]) < 0x80) ++i;
  return i;
}

size_t validPrefix(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    i += asciiPrefix(s.substr(i));
    if (i >= n) break;
    Sequence seq = decode(p + i, n - i);
    if (!seq.valid) return i;
    i += seq.length;
  }
  return n;
}

size_t appendRepaired(std::string_view s, std::string& out) {
  size_t replaced = 0;
  while (!s.empty()) {
    size_t good = validPrefix(s);
    out.append(s.data(), good);
    if (good == s.size()) break;
    Sequence seq = decode(reinterpret_cast<const unsigned char*>(s.data()) + good, s.size() - good);
    out.append(kReplacement);
    ++replaced;
    s.remove_prefix(good + seq.length);
  }
  return replaced;
}

}  // namespace logsplice::outputs::format::utf8
