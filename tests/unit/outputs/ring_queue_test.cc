#include "outputs/ring_queue.h"

#include <deque>
#include <random>

#include <catch2/catch.hpp>

namespace logsplice::outputs {
namespace {

TEST_CASE("RingQueue behaves as a FIFO through growth and wrap-around") {
  RingQueue<int> q;
  std::deque<int> model;
  std::mt19937 rng(7);
  int next = 0;
  for (int step = 0; step < 100000; ++step) {
    // Push more than pop at first (growth past 64, 128, ...), then drain (wrap-around).
    bool push = model.empty() || (step < 60000 ? rng() % 3 != 0 : rng() % 3 == 0);
    if (push) {
      q.push_back(next);
      model.push_back(next);
      ++next;
    } else {
      REQUIRE(q.front() == model.front());
      q.pop_front();
      model.pop_front();
    }
    REQUIRE(q.size() == model.size());
    if (!model.empty()) {
      REQUIRE(q.front() == model.front());
      REQUIRE(q.back() == model.back());
    }
  }
  std::vector<int> seen;
  q.forEach([&](int v) { seen.push_back(v); });
  CHECK(seen == std::vector<int>(model.begin(), model.end()));
  q.back() = -1;
  CHECK(q.back() == -1);
  q.clear();
  CHECK(q.empty());
  q.push_back(5);
  CHECK(q.front() == 5);
}

}  // namespace
}  // namespace logsplice::outputs
