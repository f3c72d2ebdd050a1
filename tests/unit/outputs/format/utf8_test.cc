#include "outputs/format/utf8.h"

#include <catch2/catch.hpp>
#include <string>

namespace logsplice::outputs::format::utf8 {
namespace {

std::string repaired(std::string_view in, size_t& count) {
  std::string out;
  count = appendRepaired(in, out);
  return out;
}

TEST_CASE("valid UTF-8 passes unchanged", "[format][utf8]") {
  const std::string valid[] = {
      "",
      "plain ascii, longer than eight bytes to use the word loop",
      "\x7f DEL and \x01 controls are valid UTF-8",
      "caf\xC3\xA9",                    // U+00E9
      "\xE2\x82\xAC 5",                 // U+20AC
      "\xF0\x9F\x98\x80 smile",         // U+1F600
      "\xF4\x8F\xBF\xBF",               // U+10FFFF, the last code point
      "\xED\x9F\xBF and \xEE\x80\x80",  // U+D7FF and U+E000, around the surrogates
      "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xF0\x90\x80\x80",  // the smallest non-overlong forms
  };
  for (const std::string& s : valid) {
    INFO(s);
    CHECK(validPrefix(s) == s.size());
    size_t count = 99;
    CHECK(repaired(s, count) == s);
    CHECK(count == 0);
  }
}

TEST_CASE("each ill-formed sequence becomes one U+FFFD per maximal subpart", "[format][utf8]") {
  const std::string r(kReplacement);
  struct Case {
    std::string in;
    std::string out;
    size_t count;
  };
  const Case cases[] = {
      {"\x80", r, 1},  // stray continuation byte
      {"a\xBF"
       "b",
       "a" + r + "b", 1},
      {"\xC0\xAF", r + r, 2},  // overlong '/' (C0 is never valid)
      {"\xC1\xBF", r + r, 2},
      {"\xE0\x80\xAF", r + r + r, 3},          // overlong 3-byte
      {"\xF0\x80\x80\xAF", r + r + r + r, 4},  // overlong 4-byte
      {"\xED\xA0\x80", r + r + r, 3},          // U+D800, a surrogate
      {"\xED\xBF\xBF", r + r + r, 3},          // U+DFFF
      {"\xF4\x90\x80\x80", r + r + r + r, 4},  // U+110000
      {"\xF5\x80\x80\x80", r + r + r + r, 4},  // F5..FF never start a sequence
      {"\xFF", r, 1},
      {"\xE2\x82", r, 1},  // truncated at the end
      {"\xF0\x9F\x98"
       "A",
       r + "A", 1},                                     // truncated before ASCII
      {"\xE2\x82\xE2\x82\xAC", r + "\xE2\x82\xAC", 1},  // truncated before a valid sequence
      {"ok\xC3", "ok" + r, 1},                          // lone lead byte at the end
  };
  for (const Case& c : cases) {
    INFO("input bytes: " << c.in.size());
    size_t count = 0;
    CHECK(repaired(c.in, count) == c.out);
    CHECK(count == c.count);
    CHECK(validPrefix(c.in) < c.in.size());
  }
}

TEST_CASE("validPrefix stops at the first ill-formed byte", "[format][utf8]") {
  CHECK(validPrefix("0123456789abcdef\x80") == 16);
  CHECK(validPrefix("caf\xC3\xA9\xC3") == 5);
  CHECK(asciiPrefix("0123456789\xC3\xA9") == 10);
  CHECK(asciiPrefix("01234567") == 8);
  CHECK(asciiPrefix("") == 0);
}

TEST_CASE("decode reports lengths of valid and invalid sequences", "[format][utf8]") {
  auto d = [](std::string_view s) {
    return decode(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  CHECK(d("\xF0\x9F\x98\x80").length == 4);
  CHECK(d("\xF0\x9F\x98\x80").valid);
  CHECK(d("\xF0\x9F\x98").length == 3);
  CHECK_FALSE(d("\xF0\x9F\x98").valid);
  CHECK(d("\xE0\x9F\x80").length == 1);
  CHECK_FALSE(d("\xE0\x9F\x80").valid);
}

}  // namespace
}  // namespace logsplice::outputs::format::utf8
