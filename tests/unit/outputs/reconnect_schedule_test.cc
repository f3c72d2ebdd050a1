// Recovery after a collector outage: the connect attempts the default backoff makes while a
// collector is down (how often it is knocked on) and after it comes back (how soon it is
// reached), first on paper from Backoff's delays, then with real timers against a port on
// 127.0.0.1 that refuses and later listens, or accepts and drops every connection.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <deque>
#include <random>

#include "config/config.h"
#include "outputs/backoff.h"
#include "outputs/tcp_connection.h"
#include "tests/support/tcp_test_peer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using Millis = std::chrono::milliseconds;

TEST_CASE("Default backoff: a few attempts a second while down, reached within max after") {
  const config::Backoff defaults;
  const int64_t max_ms = defaults.max.count();
  REQUIRE(max_ms <= 500);
  int64_t worst_wait = 0;
  double total_wait = 0;
  int max_per_second = 0;
  std::mt19937_64 when(11);
  const int kSeeds = 500;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    CAPTURE(seed);
    // A refused connect fails at once: attempts happen at the sums of the delays.
    Backoff b(defaults.initial, defaults.max, seed);
    int64_t back_at = 10'000 + static_cast<int64_t>(when() % 50'000);  // down 10..60 s
    std::deque<int64_t> last_second;
    int64_t t = 0;
    while (t < back_at) {
      last_second.push_back(t);
      while (last_second.front() <= t - 1000) last_second.pop_front();
      max_per_second = std::max(max_per_second, static_cast<int>(last_second.size()));
      t += b.next().count();
    }
    // t: the first attempt once the collector listens again.
    worst_wait = std::max(worst_wait, t - back_at);
    total_wait += static_cast<double>(t - back_at);
    REQUIRE(t - back_at <= max_ms);
  }
  std::printf(
      "default backoff %lld..%lld ms: at most %d attempts in any second while down; "
      "first attempt after the return: mean %.0f ms, worst %lld ms (%d outages)\n",
      static_cast<long long>(defaults.initial.count()), static_cast<long long>(max_ms),
      max_per_second, total_wait / kSeeds, static_cast<long long>(worst_wait), kSeeds);
  // Delays are at least max/2 once capped; the first few (initial/2 upwards) add at most 2.
  CHECK(max_per_second <= 6);
}

namespace {

struct Counter : TcpConnection::Handler {
  int ups = 0;
  int failed_tries = 0;
  int lost = 0;
  void connectionUp() override { ++ups; }
  void connectionWritable() override {}
  void connectionDown(bool was_connected) override { ++(was_connected ? lost : failed_tries); }
  void connectionAckTick() override {}
};

config::TcpOutput outputTo(const testing::TestSocket& server) {
  config::TcpOutput cfg;  // the default backoff
  auto hp = sys::parseHostPort(server.address());
  REQUIRE(hp.ok());
  cfg.addresses.push_back(hp.value());
  return cfg;
}

void closeConnection(testing::Loop& loop, TcpConnection& conn) {
  bool closed = false;
  conn.close([&] { closed = true; });
  REQUIRE(loop.waitFor([&] { return closed; }));
}

}  // namespace

TEST_CASE("Real timers: a refused collector is retried gently and reached soon after it listens") {
  testing::Loop loop;
  testing::TestSocket server;  // bound, not listening: connects are refused
  Counter counter;
  TcpConnection conn(loop.get(), "c", outputTo(server), counter);
  REQUIRE(conn.start().isOk());
  auto down_since = std::chrono::steady_clock::now();
  loop.runFor(3000);
  double down_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - down_since).count();
  int tries = counter.failed_tries;
  CHECK(counter.ups == 0);
  CHECK(tries >= 3);  // it does keep trying
  // The delays sum to >= 50+100+200+250*k ms: never more than ~13 tries in 3 s (a loaded
  // machine only makes fewer).
  CHECK(tries <= 14);
  server.listen();
  auto back = std::chrono::steady_clock::now();
  REQUIRE(loop.waitFor([&] { return counter.ups == 1; }, 5000));
  double wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count();
  std::printf(
      "refused for %.2f s: %d connect attempts (%.1f/s); connected %.0f ms after the "
      "port listened again\n",
      down_s, tries, tries / down_s, wait_s * 1000);
  CHECK(wait_s < 1.5);  // generous: the cap is 500 ms
  closeConnection(loop, conn);
}

TEST_CASE("Real timers: a collector that accepts and drops at once is not hammered") {
  testing::Loop loop;
  testing::TestSocket server;
  server.listen();
  Counter counter;
  TcpConnection conn(loop.get(), "c", outputTo(server), counter);
  REQUIRE(conn.start().isOk());
  // The collector accepts every connection and closes it: each lives for milliseconds, so the
  // backoff keeps growing instead of starting again from `initial` after every connect.
  int accepted = 0;
  auto since = std::chrono::steady_clock::now();
  loop.waitFor(
      [&] {
        for (sys::UniqueFd fd = server.accept(); fd.valid(); fd = server.accept()) ++accepted;
        return false;
      },
      3000);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  std::printf("accept-and-drop collector: %d connections in %.2f s (%d seen lost)\n", accepted,
              secs, counter.lost);
  CHECK(counter.lost >= 3);
  // Starting again from `initial` (50..100 ms) after each would allow ~40; grown: ~13 at most.
  CHECK(accepted <= 15);
  closeConnection(loop, conn);
}
