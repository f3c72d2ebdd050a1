#include "outputs/format/framing.h"

#include <catch2/catch.hpp>
#include <string>

namespace logsplice::outputs::format {
namespace {

TEST_CASE("octet counting prefixes the byte count and a space", "[format][framing]") {
  std::string out;
  appendFramed(Framing::kOctetCounting, "hello", out);
  CHECK(out == "5 hello");
  appendFramed(Framing::kOctetCounting, "", out);
  CHECK(out == "5 hello0 ");
}

TEST_CASE("octet counts are bytes, not characters", "[format][framing]") {
  std::string out;
  // 'é' is 2 bytes, '€' 3 and an emoji 4: 1 + 2 + 3 + 4 = 10 bytes for 4 characters.
  appendFramed(Framing::kOctetCounting, "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", out);
  CHECK(out == "10 a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

TEST_CASE("octet counting carries newlines inside a message", "[format][framing]") {
  std::string out;
  appendFramed(Framing::kOctetCounting, "line 1\nline 2", out);
  CHECK(out == "13 line 1\nline 2");
}

TEST_CASE("LF framing appends a newline", "[format][framing]") {
  std::string out;
  appendFramed(Framing::kLf, "one", out);
  appendFramed(Framing::kLf, "two", out);
  CHECK(out == "one\ntwo\n");
}

TEST_CASE("framing in place frames what was appended after start", "[format][framing]") {
  std::string out = "3 abc";
  size_t start = out.size();
  out += std::string(1234, 'x');
  frameInPlace(Framing::kOctetCounting, out, start);
  CHECK(out == "3 abc1234 " + std::string(1234, 'x'));
  CHECK(octetCountPrefixLength(1234) == 5);
  CHECK(octetCountPrefixLength(0) == 2);

  std::string lf = "a\n";
  start = lf.size();
  lf += "b";
  frameInPlace(Framing::kLf, lf, start);
  CHECK(lf == "a\nb\n");
}

}  // namespace
}  // namespace logsplice::outputs::format
