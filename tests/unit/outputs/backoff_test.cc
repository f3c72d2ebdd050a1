// Backoff: full jitter within [c/2, c] where c doubles from `initial` up to `max`; reset().

#include "outputs/backoff.h"

#include <catch2/catch.hpp>
#include <set>

using logsplice::outputs::Backoff;
using Millis = std::chrono::milliseconds;

TEST_CASE("Backoff delays stay within [c/2, c], c doubling up to the cap") {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    CAPTURE(seed);
    Backoff b(Millis(100), Millis(3000), seed);
    uint64_t ceiling = 100;
    for (int attempt = 0; attempt < 60; ++attempt) {
      CAPTURE(attempt);
      CHECK(b.attempts() == static_cast<uint32_t>(attempt));
      auto d = static_cast<uint64_t>(b.next().count());
      CHECK(d >= ceiling / 2);
      CHECK(d <= ceiling);
      CHECK(d <= 3000);
      ceiling = std::min<uint64_t>(ceiling * 2, 3000);
    }
  }
}

TEST_CASE("Backoff jitters: the same attempt gives different delays across seeds") {
  std::set<int64_t> first, capped;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Backoff b(Millis(1000), Millis(8000), seed);
    first.insert(b.next().count());
    for (int i = 0; i < 10; ++i) b.next();
    capped.insert(b.next().count());
  }
  CHECK(first.size() > 10);
  CHECK(capped.size() > 10);
  for (int64_t d : capped) {
    CHECK(d >= 4000);
    CHECK(d <= 8000);
  }
  // Same seed, same sequence.
  Backoff x(Millis(100), Millis(1000), 7), y(Millis(100), Millis(1000), 7);
  for (int i = 0; i < 10; ++i) CHECK(x.next() == y.next());
}

TEST_CASE("Backoff::reset starts again from the initial delay") {
  Backoff b(Millis(200), Millis(10000), 3);
  for (int i = 0; i < 8; ++i) b.next();
  CHECK(b.next().count() >= 5000);
  b.reset();
  CHECK(b.attempts() == 0);
  auto d = b.next().count();
  CHECK(d >= 100);
  CHECK(d <= 200);
}

TEST_CASE("Backoff survives extreme settings") {
  // A cap below the initial delay: the cap wins.
  Backoff low(Millis(5000), Millis(1000), 1);
  for (int i = 0; i < 5; ++i) {
    auto d = low.next().count();
    CHECK(d >= 500);
    CHECK(d <= 1000);
  }
  // Thousands of attempts never overflow the shift.
  Backoff many(Millis(100), Millis(30000), 2);
  for (int i = 0; i < 5000; ++i) {
    auto d = many.next().count();
    REQUIRE(d <= 30000);
    if (i > 20) REQUIRE(d >= 15000);
  }
  // Large initial delays (an hour) with many attempts stay at the cap.
  Backoff hour(Millis(3600 * 1000), Millis(4 * 3600 * 1000), 3);
  for (int i = 0; i < 100; ++i) {
    auto d = hour.next().count();
    REQUIRE(d <= 4 * 3600 * 1000);
    if (i >= 2) REQUIRE(d >= 2 * 3600 * 1000);
  }
  // Zero initial delay: never negative, never above 1 ms.
  Backoff zero(Millis(0), Millis(0), 4);
  for (int i = 0; i < 10; ++i) CHECK(zero.next().count() <= 1);
}
