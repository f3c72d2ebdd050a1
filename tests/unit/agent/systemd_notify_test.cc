#include "agent/systemd_notify.h"

#include <catch2/catch.hpp>

using logsplice::agent::watchdogPingMs;

TEST_CASE("watchdog pings come every half period", "[systemd]") {
  CHECK(watchdogPingMs(30'000'000) == 15'000);  // WatchdogSec=30s
  CHECK(watchdogPingMs(200'000) == 100);
  CHECK(watchdogPingMs(3'001) == 1);  // rounded down to whole milliseconds
}

TEST_CASE("no watchdog, no pings; a tiny one still pings every millisecond", "[systemd]") {
  CHECK(watchdogPingMs(0) == 0);
  CHECK(watchdogPingMs(1) == 1);
  CHECK(watchdogPingMs(1'999) == 1);
}
