#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace logsplice::outputs::format::utf8 {

// The replacement character U+FFFD, encoded.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// The first sequence of `p[0..n)`, n >= 1: `length` bytes, well-formed or not. An ill-formed
// sequence is its "maximal subpart" (Unicode 15, section 3.9, U+FFFD substitution): the longest
// prefix that could begin a well-formed sequence, at least one byte. So a truncated 3-byte
// sequence is one replacement, a stray continuation byte is one, and overlong forms (C0, C1,
// E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF)
// are refused on their first byte or two, as a strict decoder must.
struct Sequence {
  size_t length = 1;
  bool valid = false;
};
Sequence decode(const unsigned char* p, size_t n);

// How many bytes at the start of `s` are ASCII (< 0x80), checking 8 bytes at a time.
size_t asciiPrefix(std::string_view s);

// The length of the longest well-formed UTF-8 prefix of `s`; s.size() when all of it is valid.
size_t validPrefix(std::string_view s);

// Appends `s` to `out` with each ill-formed sequence replaced by U+FFFD; returns how many
// replacements were made (0 when `s` is valid UTF-8, which is then appended as it is).
size_t appendRepaired(std::string_view s, std::string& out);

}  // namespace logsplice::outputs::format::utf8
