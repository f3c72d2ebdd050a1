// RouteTable: dense sink ids, never reused; cursors indexed by them; names for lookups on reload.

#include "agent/route_table.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/fake_sink.h"
#include "tests/support/recording_listener.h"

using namespace logsplice;
using namespace logsplice::agent;

namespace {

std::unique_ptr<outputs::Sink> sink(const std::string& name, outputs::SinkListener& l) {
  return std::make_unique<testing::FakeSink>(name, l);
}

}  // namespace

TEST_CASE("RouteTable: sinks get dense ids; a removed sink's id is never given again") {
  testing::RecordingListener l;
  RouteTable t;
  CHECK(t.addSink(sink("a", l)).sink->id() == 0);
  CHECK(t.addSink(sink("b", l)).sink->id() == 1);
  CHECK(t.addSink(sink("c", l)).sink->id() == 2);
  REQUIRE(t.slot(1));
  CHECK(t.slot(1)->sink->name() == "b");
  CHECK(t.slot(3) == nullptr);

  FileRoute fs;
  fs.source = std::make_shared<const outputs::SourceInfo>(outputs::SourceInfo{"in", "", ""});
  FileRoute& f = t.addFile(42, std::move(fs));
  Cursor c;
  c.cursor = 10;
  f.route(0, c);
  f.route(1, c);
  f.route(2, c);
  CHECK(f.routedSinks() == 3);

  std::unique_ptr<outputs::Sink> gone = t.eraseSink(1);
  REQUIRE(gone);
  CHECK(gone->name() == "b");
  CHECK(t.slot(1) == nullptr);
  CHECK(t.file(42)->cursor(1) == nullptr);  // its cursors went with it
  CHECK(t.file(42)->routedSinks() == 2);
  CHECK(t.eraseSink(1) == nullptr);

  // Re-added under the same name: a new id, and no cursor until it is routed again.
  SinkSlot& again = t.addSink(sink("b", l));
  CHECK(again.sink->id() == 3);
  CHECK(t.slotByName("b") == &again);
  CHECK(t.file(42)->cursor(3) == nullptr);

  std::vector<uint32_t> ids;
  t.forEachSink([&](uint32_t id, SinkSlot& s) {
    CHECK(s.sink->id() == id);
    ids.push_back(id);
  });
  CHECK(ids == std::vector<uint32_t>{0, 2, 3});
  std::vector<uint32_t> routed;
  t.file(42)->forEachCursor([&](uint32_t id, const Cursor& cur) {
    CHECK(cur.cursor == 10);
    routed.push_back(id);
  });
  CHECK(routed == std::vector<uint32_t>{0, 2});
}

TEST_CASE("RouteTable: a sink being removed is not found by name; its successor is") {
  testing::RecordingListener l;
  RouteTable t;
  SinkSlot& old_slot = t.addSink(sink("out", l));
  old_slot.removing = true;  // a reload removed it; a fill is still in flight
  CHECK(t.slotByName("out") == nullptr);
  SinkSlot& fresh = t.addSink(sink("out", l));
  CHECK(t.slotByName("out") == &fresh);
  CHECK(t.slot(0)->removing);  // still there until its fill comes back
  CHECK(t.slotByName("none") == nullptr);
}
