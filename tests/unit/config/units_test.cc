#include "config/units.h"

#include <catch2/catch.hpp>

namespace logsplice::config {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

uint64_t sizeOf(std::string_view text) {
  sys::Result<uint64_t> r = parseSize(text);
  INFO("parseSize(" << text << "): " << (r.ok() ? "" : r.error().context()));
  REQUIRE(r.ok());
  return r.value();
}

std::string sizeError(std::string_view text) {
  sys::Result<uint64_t> r = parseSize(text);
  INFO("parseSize(" << text << ") should fail");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == sys::ErrorCode::kInvalidConfig);
  return r.error().context();
}

Millis durationOf(std::string_view text) {
  sys::Result<Millis> r = parseDuration(text);
  INFO("parseDuration(" << text << "): " << (r.ok() ? "" : r.error().context()));
  REQUIRE(r.ok());
  return r.value();
}

std::string durationError(std::string_view text) {
  sys::Result<Millis> r = parseDuration(text);
  INFO("parseDuration(" << text << ") should fail");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == sys::ErrorCode::kInvalidConfig);
  return r.error().context();
}

TEST_CASE("parseSize reads plain numbers and bytes", "[config][units]") {
  CHECK(sizeOf("0") == 0);
  CHECK(sizeOf("1024") == 1024);
  CHECK(sizeOf("17B") == 17);
  CHECK(sizeOf(" 42 ") == 42);
}

TEST_CASE("parseSize reads binary units", "[config][units]") {
  CHECK(sizeOf("64KiB") == 64 * 1024);
  CHECK(sizeOf("1MiB") == 1024 * 1024);
  CHECK(sizeOf("2GiB") == 2ULL * 1024 * 1024 * 1024);
  CHECK(sizeOf("1TiB") == 1ULL << 40);
  CHECK(sizeOf("64 KiB") == 64 * 1024);
}

TEST_CASE("parseSize reads decimal units as powers of 1000", "[config][units]") {
  CHECK(sizeOf("10KB") == 10'000);
  CHECK(sizeOf("1MB") == 1'000'000);
  CHECK(sizeOf("1GB") == 1'000'000'000);
  CHECK(sizeOf("2TB") == 2'000'000'000'000ULL);
}

TEST_CASE("parseSize reads k/m/g shorthands as binary units", "[config][units]") {
  CHECK(sizeOf("4k") == 4096);
  CHECK(sizeOf("4K") == 4096);
  CHECK(sizeOf("3m") == 3 * 1024 * 1024);
  CHECK(sizeOf("1g") == 1ULL << 30);
}

TEST_CASE("parseSize rejects junk with a message naming the text", "[config][units]") {
  CHECK(sizeError("1XB") == "invalid size '1XB' (use a number with B, KiB, MiB, GiB, KB, MB, GB)");
  CHECK_THAT(sizeError("KiB"), Catch::Contains("invalid size 'KiB'"));
  CHECK_THAT(sizeError("abc"), Catch::Contains("invalid size"));
  CHECK_THAT(sizeError("1kib"), Catch::Contains("invalid size"));  // units are case-sensitive
  CHECK_THAT(sizeError("+5"), Catch::Contains("invalid size"));
  CHECK_THAT(sizeError("1 2"), Catch::Contains("invalid size"));
}

TEST_CASE("parseSize rejects empty, negative, fractional and overflowing sizes",
          "[config][units]") {
  CHECK_THAT(sizeError(""), Catch::Contains("empty size"));
  CHECK_THAT(sizeError("   "), Catch::Contains("empty size"));
  CHECK_THAT(sizeError("-1"), Catch::Contains("must not be negative"));
  CHECK_THAT(sizeError("-1KiB"), Catch::Contains("must not be negative"));
  CHECK_THAT(sizeError("1.5GiB"), Catch::Contains("whole number"));
  CHECK_THAT(sizeError("99999999999999999999"), Catch::Contains("too large"));
  CHECK_THAT(sizeError("16777216TiB"), Catch::Contains("too large"));  // 2^64 bytes
  CHECK(sizeOf("16777215TiB") == 16777215ULL << 40);                   // just below
}

TEST_CASE("parseDuration reads each unit", "[config][units]") {
  CHECK(durationOf("250ms") == Millis(250));
  CHECK(durationOf("5s") == seconds(5));
  CHECK(durationOf("1m") == minutes(1));
  CHECK(durationOf("1h") == hours(1));
  CHECK(durationOf("1d") == hours(24));
  CHECK(durationOf("0s") == Millis(0));
}

TEST_CASE("parseDuration adds up combinations", "[config][units]") {
  CHECK(durationOf("1h30m") == minutes(90));
  CHECK(durationOf("1m30s") == seconds(90));
  CHECK(durationOf("2s500ms") == Millis(2500));
  CHECK(durationOf("1d2h3m4s5ms") == hours(26) + minutes(3) + seconds(4) + Millis(5));
}

TEST_CASE("parseDuration wants a unit on a bare number", "[config][units]") {
  CHECK_THAT(durationError("5"), Catch::Contains("needs a unit"));
  CHECK_THAT(durationError("5"), Catch::Contains("'5'"));
  CHECK_THAT(durationError("0"), Catch::Contains("needs a unit"));
}

TEST_CASE("parseDuration rejects junk, negatives and overflow", "[config][units]") {
  CHECK_THAT(durationError("5x"), Catch::Contains("invalid duration '5x'"));
  CHECK_THAT(durationError("s"), Catch::Contains("invalid duration"));
  CHECK_THAT(durationError("1h30"), Catch::Contains("invalid duration"));
  CHECK_THAT(durationError("1.5s"), Catch::Contains("invalid duration"));
  CHECK_THAT(durationError("5 s"), Catch::Contains("invalid duration"));
  CHECK_THAT(durationError("5S"), Catch::Contains("invalid duration"));
  CHECK_THAT(durationError(""), Catch::Contains("empty duration"));
  CHECK_THAT(durationError("-5s"), Catch::Contains("must not be negative"));
  CHECK_THAT(durationError("99999999999999999999d"), Catch::Contains("too long"));
  CHECK_THAT(durationError("200000000000d"), Catch::Contains("too long"));
  CHECK_THAT(durationError("9223372036854775807ms1ms"), Catch::Contains("too long"));
  CHECK(durationOf("9223372036854775807ms") == Millis::max());
}

}  // namespace
}  // namespace logsplice::config
