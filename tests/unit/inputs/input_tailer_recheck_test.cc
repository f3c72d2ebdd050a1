// Follower::requestRecheck(): a sink caught up on a rotated file tells its tailer directly; the
// close happens later (never inside the caller's callback), and a follower closed meanwhile
// is skipped.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>

#include "inputs/input_tailer.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::Loop;
using testing::RecordingObserver;
using testing::TailerRun;
using testing::TempDir;
using testing::testConfig;
using testing::Writer;

namespace {

// Counts fileClosing per follower; can ask for a recheck from inside fileGrew.
class RecheckingObserver : public RecordingObserver {
 public:
  bool recheck_on_grow = false;
  bool closed_inside_call = false;
  int rechecks_asked = 0;
  std::map<uint64_t, int> closings;

  void fileGrew(Follower& f) override {
    RecordingObserver::fileGrew(f);
    if (!recheck_on_grow || f.live()) return;
    drain(f);  // caught up: the rotated file may close now
    ++rechecks_asked;
    f.requestRecheck();
    // Still usable here: the tailer only noted the request.
    closed_inside_call = closed_inside_call || records[f.id()].closed;
  }
  void fileClosing(Follower& f) override {
    ++closings[f.id()];
    RecordingObserver::fileClosing(f);
  }
};

}  // namespace

TEST_CASE("tailer: requestRecheck closes a drained rotated follower, later", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecheckingObserver obs;
  obs.auto_drain = false;  // a slow sink: nothing closes before the test drains it
  auto cfg = testConfig("t", {dir / "app.log"});
  cfg.rotate_wait = std::chrono::milliseconds(0);
  Writer w(dir / "app.log");
  w.write("one\n");
  TailerRun run(loop, cfg, obs);
  REQUIRE(obs.order.size() == 1);
  uint64_t old_id = obs.order[0];
  REQUIRE(::rename((dir / "app.log").c_str(), (dir / "app.log.1").c_str()) == 0);
  w.write("two\n");
  REQUIRE(loop.waitFor([&] { return run->stats().rotations == 1; }));
  loop.runFor(50);
  CHECK_FALSE(obs.records[old_id].closed);  // not drained: stays open

  SECTION("asked from outside any callback") {
    auto* f = const_cast<Follower*>(obs.records[old_id].follower);
    REQUIRE(f != nullptr);
    CHECK_FALSE(f->live());
    obs.drain(*f);
    f->requestRecheck();
    CHECK_FALSE(obs.records[old_id].closed);  // deferred, even outside a callback
    REQUIRE(loop.waitFor([&] { return obs.records[old_id].closed; }, 1000));
  }
  SECTION("asked from inside the observer's own callback") {
    obs.recheck_on_grow = true;
    w.write("three\n");  // fileGrew on the rotated follower: drains and asks
    REQUIRE(loop.waitFor([&] { return obs.records[old_id].closed; }, 1000));
    CHECK(obs.rechecks_asked >= 1);
    CHECK_FALSE(obs.closed_inside_call);
    CHECK(obs.records[old_id].shipped == "one\ntwo\nthree\n");
  }
  SECTION("a follower closed before the recheck runs is skipped") {
    auto* f = const_cast<Follower*>(obs.records[old_id].follower);
    REQUIRE(f != nullptr);
    obs.drain(*f);
    f->requestRecheck();
    run->poke(*f);  // closes it now (no callback below)
    CHECK(obs.records[old_id].closed);
    loop.runFor(50);  // the recheck runs, finds no follower by that id
    CHECK(obs.closings[old_id] == 1);
  }
  CHECK(obs.closings[old_id] == 1);
  CHECK(run->stats().files_followed == 0);  // app.log is gone under its name; nothing else
}

TEST_CASE("tailer: requestRecheck on a live follower closes nothing", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecheckingObserver obs;
  auto cfg = testConfig("t", {dir / "app.log"});
  Writer w(dir / "app.log");
  w.write("one\n");
  TailerRun run(loop, cfg, obs);
  REQUIRE(obs.order.size() == 1);
  auto* f = const_cast<Follower*>(obs.records[obs.order[0]].follower);
  REQUIRE(f != nullptr);
  f->requestRecheck();
  loop.runFor(50);
  CHECK_FALSE(obs.records[obs.order[0]].closed);
  CHECK(run->stats().files_followed == 1);
}

}  // namespace logsplice::inputs
