#include "inputs/fd_budget.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <map>
#include <vector>

namespace logsplice::inputs {
namespace {

// A holder with followers by id and their last activity; every one is idle.
class FakeHolder : public FdBudget::Holder {
 public:
  FakeHolder(FdBudget& b, std::map<uint64_t, uint64_t> idle) : budget_(b), idle_(std::move(idle)) {
    for (size_t i = 0; i < idle_.size(); ++i) REQUIRE(budget_.tryAcquire());
    budget_.attach(this);
  }
  ~FakeHolder() override { budget_.detach(this); }
  void collectIdle(std::vector<Idle>& out) override {
    for (auto [id, at] : idle_) out.push_back({at, this, id});
  }
  bool suspendIdle(uint64_t id) override {
    if (idle_.erase(id) == 0) return false;
    budget_.release();
    suspended.push_back(id);
    return true;
  }
  std::vector<uint64_t> suspended;

 private:
  FdBudget& budget_;
  std::map<uint64_t, uint64_t> idle_;
};

}  // namespace

TEST_CASE("fd budget: acquire, release, lease", "[fd_budget]") {
  FdBudget b(2);
  CHECK(b.tryAcquire());
  {
    REQUIRE(b.tryAcquire());
    FdLease g(b);  // owns the second unit
    CHECK(b.available() == 0);
    CHECK_FALSE(b.tryAcquire());
    CHECK_FALSE(b.lease());
  }
  CHECK(b.inUse() == 1);  // the lease gave its unit back
  REQUIRE(b.tryAcquire());
  CHECK(b.inUse() == 2);
  b.release();
  b.release();
  b.release();  // never below zero
  CHECK(b.inUse() == 0);
  FdBudget zero(0);
  CHECK(zero.limit() == 1);
}

TEST_CASE("fd budget: a lease counts itself in its tally; moving it transfers the unit",
          "[fd_budget]") {
  FdBudget b(3);
  uint64_t tally = 0;
  FdLease a = b.lease(&tally);
  REQUIRE(a);
  CHECK(tally == 1);
  CHECK(b.inUse() == 1);
  FdLease moved = std::move(a);
  CHECK_FALSE(a);
  CHECK(moved);
  CHECK(tally == 1);
  CHECK(b.inUse() == 1);
  {
    FdLease c = b.lease(&tally);
    CHECK(tally == 2);
    moved = std::move(c);  // the unit moved-over is released first
    CHECK(tally == 1);
    CHECK(b.inUse() == 1);
  }
  CHECK(tally == 1);
  moved.reset();
  CHECK(tally == 0);
  CHECK(b.inUse() == 0);
  moved.reset();  // idempotent
  CHECK(tally == 0);
}

TEST_CASE("fd budget: reclaim takes the least recently active of every holder", "[fd_budget]") {
  FdBudget b(6);
  FakeHolder a(b, {{1, 50}, {2, 10}, {3, 70}});
  FakeHolder c(b, {{4, 20}, {5, 60}, {6, 5}});
  CHECK(b.available() == 0);
  CHECK(b.reclaim(3) == 3);
  CHECK(a.suspended == std::vector<uint64_t>{2});
  CHECK(c.suspended == std::vector<uint64_t>{6, 4});
  CHECK(b.available() == 3);
  CHECK(b.reclaim(10) == 3);  // only three idle left
  CHECK(b.reclaim(1) == 0);
}

TEST_CASE("fd budget: EMFILE lowers the limit below what followers hold", "[fd_budget]") {
  FdBudget b;
  for (int i = 0; i < 100; ++i) REQUIRE(b.tryAcquire());
  b.exhausted(EMFILE);
  CHECK(b.limit() == 88);  // 100 - 100/8: room for sockets and checkpoints
  CHECK(b.available() == 0);
  b.exhausted(EMFILE);  // still 100 held: not lowered again
  CHECK(b.limit() == 88);
  FdBudget empty;
  empty.exhausted(ENFILE);
  CHECK(empty.limit() == 1);  // always at least one: files wait, they are never dropped
}

TEST_CASE("fd budget: the effective budget stays below RLIMIT_NOFILE", "[fd_budget]") {
  struct rlimit rl;
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  uint64_t soft = rl.rlim_cur;
  CHECK(effectiveFdBudget(UINT64_MAX, 64) == soft - 64);
  CHECK(effectiveFdBudget(10, 64) == 10);
  CHECK(effectiveFdBudget(UINT64_MAX, soft + 5) == 1);
}

}  // namespace logsplice::inputs
