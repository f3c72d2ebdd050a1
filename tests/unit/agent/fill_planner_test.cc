// FillPlanner alone: a route table of fake sinks and followers of real temp files, FakeSysCalls
// for the residency probe and a FakeClock. No loop, no I/O thread: only the decisions.

#include "agent/fill_planner.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inputs/file_identity.h"
#include "inputs/follower.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_sink.h"
#include "tests/support/fake_sys_calls.h"
#include "tests/support/recording_listener.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::agent;
using logsplice::testing::numberedLines;
using logsplice::testing::TempDir;
using logsplice::testing::writeFile;

namespace {

// FakeSysCalls with the residency probe scripted: `resident` answers every RWF_NOWAIT read.
class ProbeSysCalls : public testing::FakeSysCalls {
 public:
  std::optional<bool> resident;  // unset: the real call
  int probes = 0;
  sys::SysResult preadv2(int fd, void* buf, size_t len, off_t offset, int flags) override {
    if (flags & RWF_NOWAIT) ++probes;
    if (resident && (flags & RWF_NOWAIT)) {
      return *resident ? sys::SysResult{1, 0} : fail(EAGAIN);
    }
    return SysCalls::preadv2(fd, buf, len, offset, flags);
  }
};

class PlannerHarness {
 public:
  explicit PlannerHarness(bool lockstep = true) {
    cfg_.chunk_bytes = 4096;
    cfg_.pipe_bytes = 64 * 1024;
    cfg_.lockstep = lockstep;
    planner_ = std::make_unique<FillPlanner>(table_, cfg_, sys_, clock_);
  }

  uint32_t addSink(const std::string& name) {
    auto sink = std::make_unique<testing::FakeSink>(name, listener_, cfg_.pipe_bytes);
    REQUIRE(sink->start().isOk());
    SinkSlot& slot = table_.addSink(std::move(sink));
    slot.inputs.insert("in");
    return slot.sink->id();
  }
  // Follows a new file holding `content`; every sink starts at `start`.
  uint64_t addFile(const std::string& name, const std::string& content, uint64_t start = 0) {
    std::string path = dir_ / name;
    writeFile(path, content);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    auto id = inputs::identify(fd, st);
    REQUIRE(id.ok());
    auto f = std::make_unique<inputs::Follower>(inputs::Follower::nextId(), path, "in",
                                                id.value(), sys::UniqueFd(fd), false, 0,
                                                clock_.monotonicMs());
    REQUIRE(f->refresh(sys::SysCalls::real(), clock_.monotonicMs()).error.isOk());
    FileRoute fs;
    fs.follower = f.get();
    fs.source = std::make_shared<const outputs::SourceInfo>(outputs::SourceInfo{"in", path, ""});
    fs.generation = f->generation();
    FileRoute& route = table_.addFile(f->id(), std::move(fs));
    table_.forEachSink([&](uint32_t sink_id, SinkSlot&) {
      Cursor c;
      c.cursor = c.delivered = start;
      route.route(sink_id, c);
    });
    uint64_t file_id = f->id();
    followers_.push_back(std::move(f));
    planner_->refreshPending(file_id, route);
    return file_id;
  }
  inputs::Follower& follower(uint64_t file_id) { return *table_.file(file_id)->follower; }
  void setCursor(uint64_t file_id, uint32_t sink, uint64_t offset) {
    FileRoute& fs = *table_.file(file_id);
    fs.cursor(sink)->cursor = offset;
    planner_->refreshPending(file_id, fs);
  }
  // What a fill's completion does to its sinks' slots (no bytes move in these tests).
  void issueAll(const std::vector<FillPlanner::Fill>& fills) {
    for (const auto& fill : fills) {
      auto job = planner_->buildJob(*table_.file(fill.file_id), fill.file_id, fill.sinks);
      for (const FillTarget& t : job->targets) table_.slot(t.sink)->filling = false;
    }
  }

  FillPlanner& planner() { return *planner_; }
  RouteTable& table() { return table_; }
  testing::FakeClock& clock() { return clock_; }
  ProbeSysCalls& sys() { return sys_; }

 private:
  TempDir dir_;
  config::AgentConfig cfg_;
  testing::RecordingListener listener_;
  ProbeSysCalls sys_;
  testing::FakeClock clock_;
  RouteTable table_;
  std::unique_ptr<FillPlanner> planner_;
  std::vector<std::unique_ptr<inputs::Follower>> followers_;
};

std::vector<uint32_t> ids(std::initializer_list<uint32_t> l) { return l; }

}  // namespace

TEST_CASE("FillPlanner: a sink is fed its live files round robin") {
  PlannerHarness h;
  uint32_t a = h.addSink("a");
  uint64_t f1 = h.addFile("one.log", numberedLines(0, 10));
  uint64_t f2 = h.addFile("two.log", numberedLines(0, 10));
  uint64_t f3 = h.addFile("three.log", numberedLines(0, 10));
  std::vector<uint64_t> order;
  for (int i = 0; i < 6; ++i) {
    auto fills = h.planner().plan();
    REQUIRE(fills.size() == 1);
    CHECK(fills[0].sinks == ids({a}));
    order.push_back(fills[0].file_id);
    h.issueAll(fills);
  }
  CHECK(order == std::vector<uint64_t>{f1, f2, f3, f1, f2, f3});
}

TEST_CASE("FillPlanner: a sink mid-line stays on its file; rotated files come first") {
  PlannerHarness h;
  uint32_t a = h.addSink("a");
  uint64_t f1 = h.addFile("one.log", numberedLines(0, 10));
  uint64_t f2 = h.addFile("two.log", numberedLines(0, 10));
  SinkSlot& slot = *h.table().slot(a);

  slot.bound_file = f2;  // stopped in the middle of a line of two.log
  CHECK(h.planner().pickFile(slot) == f2);
  CHECK(h.planner().pickFile(slot) == f2);
  h.setCursor(f2, a, h.follower(f2).completeEnd());  // its line went out; nothing left there
  CHECK(h.planner().pickFile(slot) == f1);
  CHECK(slot.bound_file == 0);

  uint64_t f3 = h.addFile("three.log", numberedLines(0, 10));
  slot.last_served = f1;  // round robin would pick three.log next...
  h.follower(f1).markRotated(h.clock().monotonicMs());
  CHECK(h.planner().pickFile(slot) == f1);  // ...but a rotated file is finished first
  h.setCursor(f1, a, h.follower(f1).completeEnd());
  CHECK(h.planner().pickFile(slot) == f3);
}

TEST_CASE("FillPlanner: sinks at the same offset of a file fill together") {
  PlannerHarness h;
  uint32_t a = h.addSink("a");
  uint32_t b = h.addSink("b");
  uint32_t c = h.addSink("c");
  std::string content = numberedLines(0, 100);
  uint64_t f = h.addFile("app.log", content);
  auto fills = h.planner().plan();
  REQUIRE(fills.size() == 1);
  CHECK(fills[0].file_id == f);
  CHECK(fills[0].sinks == ids({a, b, c}));
  auto job = h.planner().buildJob(*h.table().file(f), f, fills[0].sinks);
  CHECK(job->offset == 0);
  CHECK(job->limit_end == content.size());
  CHECK(job->lockstep);
  REQUIRE(job->targets.size() == 3);
  CHECK(job->targets[0].pipe_wr == h.table().slot(a)->sink->pipe().writeFd());
  CHECK(h.table().slot(a)->filling);
  CHECK(h.table().slot(b)->filling);
  CHECK(h.table().slot(c)->filling);
  CHECK(h.planner().plan().empty());  // all three are filling
}

TEST_CASE("FillPlanner: a demoted sink is planned alone until it meets the group again") {
  PlannerHarness h;
  uint32_t a = h.addSink("a");
  uint32_t b = h.addSink("b");
  uint32_t c = h.addSink("c");
  std::string content = numberedLines(0, 100);
  uint64_t f = h.addFile("app.log", content);
  // A lockstep fill moved 600 bytes for a and c; b's pipe came up short at 200.
  h.setCursor(f, a, 600);
  h.setCursor(f, b, 200);
  h.setCursor(f, c, 600);
  auto fills = h.planner().plan();
  REQUIRE(fills.size() == 2);
  CHECK(fills[0].sinks == ids({b}));  // by offset: b's fill first
  CHECK(fills[1].sinks == ids({a, c}));
  h.issueAll(fills);

  // A sink out of pipe slots waits for its drain, whatever its offset.
  h.table().slot(a)->wait_for_drain = true;
  fills = h.planner().plan();
  REQUIRE(fills.size() == 2);
  CHECK(fills[1].sinks == ids({c}));
  h.issueAll(fills);
  h.table().slot(a)->wait_for_drain = false;

  h.setCursor(f, b, 600);  // caught up alone
  fills = h.planner().plan();
  REQUIRE(fills.size() == 1);
  CHECK(fills[0].sinks == ids({a, b, c}));
}

TEST_CASE("FillPlanner: with lockstep off every sink is planned on its own") {
  PlannerHarness h(/*lockstep=*/false);
  uint32_t a = h.addSink("a");
  uint32_t b = h.addSink("b");
  uint64_t f = h.addFile("app.log", numberedLines(0, 100));
  auto fills = h.planner().plan();
  REQUIRE(fills.size() == 2);
  CHECK(fills[0].file_id == f);
  CHECK(fills[0].sinks == ids({a}));
  CHECK(fills[1].sinks == ids({b}));
  auto job = h.planner().buildJob(*h.table().file(f), f, fills[0].sinks);
  CHECK_FALSE(job->lockstep);
}

TEST_CASE("FillPlanner: a file whose read failed waits for its retry time") {
  PlannerHarness h;
  h.addSink("a");
  uint64_t f = h.addFile("app.log", numberedLines(0, 100));
  h.table().file(f)->retry_at_ms = h.clock().monotonicMs() + 1000;
  CHECK(h.planner().plan().empty());
  h.clock().advanceMs(999);
  CHECK(h.planner().plan().empty());
  h.clock().advanceMs(1);
  CHECK(h.planner().plan().size() == 1);
}

TEST_CASE("FillPlanner: the residency probe decides between the loop and the I/O thread") {
  PlannerHarness h;
  uint32_t a = h.addSink("a");
  std::string content = numberedLines(0, 100);
  uint64_t f = h.addFile("app.log", content);
  auto job = h.planner().buildJob(*h.table().file(f), f, ids({a}));
  const inputs::Follower& follower = h.follower(f);

  SECTION("bytes appended seconds ago are taken as cached, without a probe") {
    h.sys().resident = false;
    CHECK(h.planner().cached(*job, follower));
    CHECK(h.sys().probes == 0);
  }
  SECTION("older bytes: the probe says cold, so the fill goes to the I/O thread") {
    h.clock().advanceMs(5000);
    h.sys().resident = false;
    CHECK_FALSE(h.planner().cached(*job, follower));
    CHECK(h.sys().probes == 1);  // the first end was cold: no need to ask for the other
  }
  SECTION("older bytes: the probe finds both ends cached, so the fill runs on the loop") {
    h.clock().advanceMs(5000);
    h.sys().resident = true;
    CHECK(h.planner().cached(*job, follower));
    CHECK(h.sys().probes == 2);
  }
  SECTION("the real probe through SysCalls: a file just written is in the page cache") {
    h.clock().advanceMs(60000);
    CHECK(h.planner().cached(*job, follower));
    CHECK(h.sys().probes == 2);
  }
  SECTION("an empty range is never run on the loop") {
    job->limit_end = job->offset;
    CHECK_FALSE(h.planner().cached(*job, follower));
    CHECK(h.sys().probes == 0);
  }
}
