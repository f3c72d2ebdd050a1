// Router with fake sinks, a real libuv loop, the real I/O thread, and real temp files followed by
// real Followers: lockstep, per-sink cursors, catch-up, truncation, rewind, breaks, checkpoints.

#include "agent/router.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/checkpoint_store.h"
#include "inputs/file_identity.h"
#include "inputs/follower.h"
#include "tests/support/fake_sink.h"
#include "tests/support/fake_sys_calls.h"
#include "tests/support/recording_metric_writer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::agent;
using logsplice::testing::appendFile;
using logsplice::testing::FakeSink;
using logsplice::testing::numberedLines;
using logsplice::testing::TempDir;
using logsplice::testing::writeFile;

namespace {

// One router on a real loop, with its checkpoint store, fake sinks and followers of real files.
// The destructor shuts everything down in the agent's order and the loop must then close.
class Harness {
 public:
  explicit Harness(uint64_t chunk_bytes = 64 * 1024, bool lockstep = true,
                   sys::SysCalls& sys = sys::SysCalls::real())
      : sys_(sys) {
    cfg_.chunk_bytes = chunk_bytes;
    cfg_.lockstep = lockstep;
    cfg_.pipe_bytes = 256 * 1024;
    store_ = std::make_unique<CheckpointStore>(dir_ / "data");
    REQUIRE(store_->prepare().isOk());
    newRouter();
  }
  ~Harness() { shutdown(); }

  Router& router() { return *router_; }
  CheckpointStore& store() { return *store_; }
  testing::Loop& loop() { return loop_; }
  std::string path(const std::string& name) const { return dir_ / name; }

  FakeSink* addSink(const std::string& name, size_t pipe_bytes = 256 * 1024,
                    std::vector<std::string> inputs = {"in"}) {
    auto sink = std::make_unique<FakeSink>(name, *router_, pipe_bytes);
    FakeSink* raw = sink.get();
    REQUIRE(router_->addSink(std::move(sink), std::move(inputs)).isOk());
    CHECK(raw->starts == 1);
    return raw;
  }

  // Follows an existing file, as an input would: open, identify, first refresh, fileOpened.
  inputs::Follower& follow(const std::string& file, uint64_t max_line_bytes = 0, bool copy = false,
                           uint64_t default_start = 0, const std::string& input = "in") {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    auto id = inputs::identify(fd, st);
    REQUIRE(id.ok());
    auto f = std::make_unique<inputs::Follower>(inputs::Follower::nextId(), file, input, id.value(),
                                                sys::UniqueFd(fd), copy, max_line_bytes, now_ms_);
    auto c = f->refresh(sys::SysCalls::real(), ++now_ms_);
    REQUIRE(c.error.isOk());
    followers_.push_back(std::move(f));
    router_->fileOpened(*followers_.back(), default_start);
    return *followers_.back();
  }

  // Re-measures the file and tells the router, as an input does on an inotify event.
  inputs::Follower::Change refresh(inputs::Follower& f) {
    auto c = f.refresh(sys::SysCalls::real(), ++now_ms_);
    REQUIRE(c.error.isOk());
    if (c.truncated) {
      router_->fileTruncated(f);
    } else if (c.grew) {
      router_->fileGrew(f);
    }
    return c;
  }

  bool waitFor(const std::function<bool()>& pred, uint64_t timeout_ms = 5000) {
    return loop_.waitFor(pred, timeout_ms);
  }

  // The router's view of (file, sink).
  Router::FileSinkView view(const inputs::Follower& f, const std::string& sink) const {
    Router::FileSinkView out{};
    bool found = false;
    router_->visit([&](const Router::FileSinkView& v) {
      if (v.path == f.path() && v.sink == sink) {
        out = v;
        found = true;
      }
    });
    CHECK(found);
    return out;
  }

  // Ends the router as the agent does: no new fills, stop the I/O thread (a running fill
  // finishes and comes back), close followers as part of the shutdown, close sinks.
  void shutdown() {
    if (!router_) return;
    router_->beginShutdown();
    router_->stop();
    for (auto& f : followers_) router_->fileClosing(*f);
    router_->closeSinks();
    followers_.clear();
    router_.reset();
    loop_.runUntilIdle();
  }
  // A restart: a new router on the same store (the followers are opened anew by the test).
  void newRouter() {
    shutdown();
    router_ = std::make_unique<Router>(loop_.get(), cfg_, *store_, sys_);
    REQUIRE(router_->start().isOk());
  }

 private:
  testing::Loop loop_;  // first: destroyed last, checks that everything closed
  sys::SysCalls& sys_;
  TempDir dir_;
  config::AgentConfig cfg_;
  std::unique_ptr<CheckpointStore> store_;
  std::unique_ptr<Router> router_;
  std::vector<std::unique_ptr<inputs::Follower>> followers_;
  uint64_t now_ms_ = 1000;
};

std::vector<std::string> splitLines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("Router: two sinks of one file are filled in lockstep with identical bytes") {
  // 50 KB in 4 KiB chunks; and 1 MB in 64 KiB chunks, where the 256 KiB pipes fill up inside
  // one scheduling pass (drains are held) and must drain there without leaving the group.
  auto [chunk, lines] = GENERATE(table<uint64_t, int>({{4096, 500}, {64 * 1024, 10000}}));
  Harness h(chunk);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, lines);
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == content.size() && b->received.size() == content.size();
  }));
  CHECK(a->received == content);
  CHECK(b->received == content);
  const RouterStats& st = h.router().stats();
  CHECK(st.lockstep_fills > 0);
  CHECK(st.lockstep_fills == st.fills);  // they never left the group
  CHECK(st.demotions == 0);
  CHECK(st.copy_fallbacks == 0);

  // Growth keeps them together.
  std::string more = numberedLines(lines, 100);
  appendFile(file, more);
  h.refresh(f);
  REQUIRE(h.waitFor([&] { return b->received.size() == content.size() + more.size(); }));
  CHECK(a->received == content + more);
  CHECK(b->received == content + more);
  CHECK(st.lockstep_fills == st.fills);
  for (const char* s : {"a", "b"}) {
    auto v = h.view(f, s);
    CHECK(v.cursor == content.size() + more.size());
    CHECK(v.delivered == content.size() + more.size());
    CHECK(v.end == content.size() + more.size());
  }
  REQUIRE(h.waitFor([&] { return h.router().drained(); }));
  CHECK(h.router().fileDrained(f));
}

TEST_CASE("Router: with lockstep off every sink is filled on its own") {
  Harness h(4096, /*lockstep=*/false);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 300);
  writeFile(file, content);
  h.follow(file);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == content.size() && b->received.size() == content.size();
  }));
  CHECK(a->received == content);
  CHECK(b->received == content);
  CHECK(h.router().stats().lockstep_fills == 0);
  CHECK(h.router().stats().fills >= 2);  // at least one fill per sink, each on its own
}

TEST_CASE("Router: a sink that cannot deliver does not hold back the other, then catches up") {
  Harness h(8192);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  b->setCanDeliver(false);
  std::string file = h.path("app.log");
  std::string part1 = numberedLines(0, 300);
  writeFile(file, part1);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] { return a->received.size() == part1.size(); }));
  std::string part2 = numberedLines(300, 300);
  appendFile(file, part2);
  h.refresh(f);
  REQUIRE(h.waitFor([&] { return a->received.size() == part1.size() + part2.size(); }));
  CHECK(a->received == part1 + part2);
  CHECK(b->received.empty());
  CHECK(b->filled() == 0);  // nothing was even put in its pipe
  CHECK(h.view(f, "b").delivered == 0);
  CHECK_FALSE(h.router().fileDrained(f));

  // The collector is back: b catches up from the file on its own, in order.
  uint64_t lockstep_before = h.router().stats().lockstep_fills;
  b->setCanDeliver(true);
  REQUIRE(h.waitFor([&] { return b->received.size() == part1.size() + part2.size(); }));
  CHECK(b->received == part1 + part2);
  CHECK(h.router().stats().lockstep_fills == lockstep_before);  // caught up alone
  REQUIRE(h.waitFor([&] { return h.router().fileDrained(f); }));

  // Level again: the next growth is filled in lockstep.
  std::string part3 = numberedLines(600, 50);
  appendFile(file, part3);
  h.refresh(f);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == b->received.size() &&
           b->received.size() == part1.size() + part2.size() + part3.size();
  }));
  CHECK(a->received == part1 + part2 + part3);
  CHECK(b->received == a->received);
  CHECK(h.router().stats().lockstep_fills > lockstep_before);
}

TEST_CASE("Router: a sink whose pipe comes up short is demoted and catches up alone") {
  // b's pipe has two slots: a chunk that spans three pages cannot be teed into it whole.
  Harness h(8192);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b", 8192);
  REQUIRE(b->pipe().capacity() == 8192);
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 1000);
  writeFile(file, content);
  h.follow(file);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == content.size() && b->received.size() == content.size();
  }));
  CHECK(a->received == content);
  CHECK(b->received == content);
  CHECK(h.router().stats().demotions > 0);
  CHECK(h.router().stats().lockstep_fills > 0);
}

TEST_CASE("Router: files that grew together leave in one drain") {
  // Ten files reported in one batch (one inotify read): ten fills, one write to the sink.
  Harness h;
  FakeSink* a = h.addSink("a");
  std::vector<std::string> contents;
  for (int i = 0; i < 10; ++i) {
    contents.push_back(numberedLines(i * 100, 5));
    writeFile(h.path("f" + std::to_string(i) + ".log"), contents.back());
  }
  int drains_before = a->drains;
  uint64_t fills_before = h.router().stats().fills;
  for (int i = 0; i < 10; ++i) h.follow(h.path("f" + std::to_string(i) + ".log"));
  size_t total = 0;
  for (const auto& c : contents) total += c.size();
  REQUIRE(h.waitFor([&] { return a->received.size() == total; }));
  for (const auto& c : contents) CHECK(a->received.find(c) != std::string::npos);
  CHECK(h.router().stats().fills - fills_before == 10);
  CHECK(a->drains - drains_before == 1);
}

TEST_CASE("Router: truncation restarts every cursor at 0 of the new content") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  std::string file = h.path("app.log");
  std::string before = numberedLines(0, 100);
  writeFile(file, before);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor(
      [&] { return b->received.size() == before.size() && a->received.size() == before.size(); }));
  uint64_t gen = f.generation();

  std::string after = numberedLines(5000, 10);  // copytruncate, then a few new lines
  writeFile(file, after);
  auto c = h.refresh(f);
  REQUIRE(c.truncated);
  CHECK(f.generation() == gen + 1);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == before.size() + after.size() &&
           b->received.size() == before.size() + after.size();
  }));
  CHECK(a->received == before + after);
  CHECK(b->received == before + after);
  for (const char* s : {"a", "b"}) {
    auto v = h.view(f, s);
    CHECK(v.cursor == after.size());
    CHECK(v.delivered == after.size());
  }
}

TEST_CASE("Router: a broken connection resends from the line start of the first unacked byte") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  a->auto_ack = false;
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 50, 20);  // 1000 bytes, lines of 20
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size(); }));
  CHECK(a->received == content);
  CHECK(h.view(f, "a").delivered == 0);  // nothing acknowledged yet

  uint64_t acked = GENERATE(uint64_t{67}, uint64_t{60}, uint64_t{0}, uint64_t{999});
  CAPTURE(acked);
  uint64_t line_start = acked / 20 * 20;
  a->ackUpTo(acked);
  CHECK(h.view(f, "a").delivered == acked);
  a->received.clear();
  a->breakConnection();
  CHECK(a->stats().resent_bytes == content.size() - acked);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size() - line_start; }));
  CHECK(a->received == content.substr(line_start));
  auto v = h.view(f, "a");
  CHECK(v.cursor == content.size());
  CHECK(v.delivered == line_start);
  a->ackAll();
  CHECK(h.view(f, "a").delivered == content.size());
  CHECK(h.router().fileDrained(f));
}

TEST_CASE("Router: a rewind of only some files resends each from its own offset") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  a->auto_ack = false;
  std::string p1 = h.path("one.log"), p2 = h.path("two.log");
  std::string c1 = numberedLines(0, 20, 20), c2 = numberedLines(100, 20, 20);
  writeFile(p1, c1);
  auto& f1 = h.follow(p1);
  REQUIRE(h.waitFor([&] { return a->received.size() == c1.size(); }));
  writeFile(p2, c2);
  auto& f2 = h.follow(p2);
  REQUIRE(h.waitFor([&] { return a->received.size() == c1.size() + c2.size(); }));
  // All of one.log and 45 bytes of two.log acknowledged.
  a->ackUpTo(c1.size() + 45);
  CHECK(h.view(f1, "a").delivered == c1.size());
  CHECK(h.view(f2, "a").delivered == 45);
  a->received.clear();
  a->breakConnection();
  REQUIRE(h.waitFor([&] { return a->received.size() == c2.size() - 40; }));
  CHECK(a->received == c2.substr(40));
  CHECK(h.view(f1, "a").cursor == c1.size());
}

// Sink::rewindUnacknowledged (outputs/sink.cc) reports the offset just after a segment's file
// bytes when only the '\n' the router added after a break is unacknowledged, with
// newline_owed = false (it only considers newline_first). Router::sinkRewound then either leaves
// the cursor alone (cursor == that offset: nothing is resent) or moves it back to the break
// (a break counts as a line start) without owing the '\n'. Either way the '\n' is never sent
// again and the piece before the break runs into the next line at the collector. Relatedly
// Router::fileDrained() is already true then (delivered == completeEnd), so a rotated file can
// be closed while its last '\n' is unacknowledged.
TEST_CASE("Router: the '\\n' of a break that was never acknowledged is sent again") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  a->auto_ack = false;
  std::string file = h.path("app.log");

  SECTION("a flushed final line, nothing after it yet") {
    writeFile(file, "abc\ndef");  // a final line without newline
    auto& f = h.follow(file);
    REQUIRE(h.waitFor([&] { return a->received == "abc\n"; }));
    REQUIRE(f.flushPartialLine());  // the input's partial_line_timeout ran out
    h.router().fileGrew(f);
    REQUIRE(h.waitFor([&] { return a->received == "abc\ndef\n"; }));
    a->ackUpTo(7);  // "abc\ndef" acknowledged, the '\n' after the break not
    CHECK_FALSE(h.router().fileDrained(f));
    a->received.clear();
    a->breakConnection();
    appendFile(file, "ghi\n");
    h.refresh(f);
    REQUIRE(h.waitFor([&] { return a->received.find("ghi\n") != std::string::npos; }));
    INFO("resent after the rewind: '" << a->received << "'");
    CHECK((a->received == "\nghi\n" || a->received == "def\nghi\n"));
  }
  SECTION("a long line split in pieces") {
    writeFile(file, std::string(25, 'x'));
    auto& f = h.follow(file, /*max_line_bytes=*/10);  // breaks at 10 and 20
    REQUIRE(f.breaks().size() == 2);
    appendFile(file, "yyy\n");
    h.refresh(f);
    std::string sent = std::string(10, 'x') + "\n" + std::string(10, 'x') + "\nxxxxxyyy\n";
    REQUIRE(h.waitFor([&] { return a->received == sent; }));
    a->ackUpTo(10);  // the first piece, not its '\n'
    a->received.clear();
    a->breakConnection();
    REQUIRE(h.waitFor([&] { return a->received.find("yyy\n") != std::string::npos; }));
    INFO("resent after the rewind: '" << a->received << "'");
    // Either just the owed '\n' and the rest, or (what the sink does: a piece counts as
    // delivered only with its '\n') the line from its start again: at least once, never a
    // piece running into the next line.
    CHECK((a->received == "\n" + sent.substr(11) || a->received == sent));
  }
}

TEST_CASE("Router: fileDrained holds only once every sink's bytes are delivered") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  a->auto_ack = false;
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 100);
  writeFile(file, content);
  auto& f = h.follow(file);
  CHECK_FALSE(h.router().fileDrained(f));
  REQUIRE(h.waitFor([&] {
    return a->received.size() == content.size() && b->received.size() == content.size();
  }));
  REQUIRE(h.waitFor([&] { return !h.router().drained() && a->pendingBytes() > 0; }));
  CHECK_FALSE(h.router().fileDrained(f));  // all in a's fd, not acknowledged
  a->ackUpTo(content.size() - 1);
  CHECK_FALSE(h.router().fileDrained(f));
  a->ackAll();
  CHECK(h.router().fileDrained(f));
  CHECK(h.router().drained());

  std::string more = numberedLines(100, 5);
  appendFile(file, more);
  h.refresh(f);
  CHECK_FALSE(h.router().fileDrained(f));  // new complete bytes to ship
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size() + more.size(); }));
  a->ackAll();
  REQUIRE(h.waitFor([&] { return h.router().fileDrained(f); }));
}

TEST_CASE("Router::checkpoint writes each sink's delivered offset, and a restart resumes there") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  b->auto_ack = false;
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 10);  // lines of 100
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == content.size() && b->received.size() == content.size();
  }));
  b->ackUpTo(250);  // mid-line 3
  h.router().checkpoint();
  const CheckpointEntry* e = h.store().find(f.identity().dev, f.identity().ino);
  REQUIRE(e != nullptr);
  CHECK(e->offsets.at("a") == content.size());
  CHECK(e->offsets.at("b") == 250);
  CHECK(e->path == file);
  CHECK(e->input == "in");
  CHECK(e->identity.fingerprint == f.identity().fingerprint);
  CHECK(e->updated_unix > 0);
  REQUIRE(h.store().flush().isOk());
  h.router().checkpoint();  // nothing changed since
  CHECK_FALSE(h.store().dirty());
  b->ackUpTo(300);
  h.router().checkpoint();
  CHECK(h.store().dirty());
  CHECK(h.store().find(f.identity().dev, f.identity().ino)->offsets.at("b") == 300);
  b->ackUpTo(350);
  h.router().checkpoint();

  // Restart (the shutdown keeps the checkpoints): a resumes at the end, b at the start of the
  // line holding its first unacknowledged byte.
  h.newRouter();
  FakeSink* a2 = h.addSink("a");
  FakeSink* b2 = h.addSink("b");
  FakeSink* c2 = h.addSink("c");  // new since the checkpoint: gets the whole file
  std::string more = numberedLines(10, 2);
  appendFile(file, more);
  h.follow(file, 0, false, /*default_start=*/content.size() + more.size());
  REQUIRE(h.waitFor([&] {
    return b2->received.size() == content.size() + more.size() - 300 &&
           a2->received.size() == more.size() &&
           c2->received.size() == content.size() + more.size();
  }));
  CHECK(a2->received == more);
  CHECK(b2->received == (content + more).substr(300));
  CHECK(c2->received == content + more);
}

TEST_CASE("Router: breaks get a '\\n' that is counted as a copy") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");

  SECTION("a final line without newline, flushed") {
    std::string file = h.path("partial.log");
    writeFile(file, "abc\ndef");
    auto& f = h.follow(file);
    REQUIRE(h.waitFor([&] { return a->received == "abc\n" && b->received == "abc\n"; }));
    uint64_t copies = sys::CopyCounter::total();
    REQUIRE(f.flushPartialLine());
    h.router().fileGrew(f);
    REQUIRE(h.waitFor([&] { return a->received.size() == 8 && b->received.size() == 8; }));
    CHECK(a->received == "abc\ndef\n");
    CHECK(b->received == "abc\ndef\n");
    CHECK(sys::CopyCounter::total() == copies + 2);
    CHECK(h.view(f, "a").delivered == 7);
    CHECK(h.router().fileDrained(f));
    // The line goes on after the break, as a new line.
    appendFile(file, "ghi\n");
    h.refresh(f);
    REQUIRE(h.waitFor([&] { return a->received.size() == 12 && b->received.size() == 12; }));
    CHECK(a->received == "abc\ndef\nghi\n");
    CHECK(b->received == "abc\ndef\nghi\n");
    CHECK(sys::CopyCounter::total() == copies + 2);
  }
  SECTION("a line longer than max_line_bytes is split, never dropped") {
    std::string file = h.path("long.log");
    writeFile(file, std::string(25, 'x'));
    auto& f = h.follow(file, /*max_line_bytes=*/10);
    std::string want = std::string(10, 'x') + "\n" + std::string(10, 'x') + "\n";
    REQUIRE(h.waitFor([&] { return a->received == want && b->received == want; }));
    appendFile(file, "yyy\n");
    h.refresh(f);
    want += "xxxxxyyy\n";
    REQUIRE(h.waitFor([&] { return a->received == want && b->received == want; }));
  }
}

TEST_CASE("Router: a sink switches files only at a line end") {
  // Chunks of 64 bytes: the 300-byte line of one.log comes in pieces; two.log must not be
  // interleaved into it.
  Harness h(64);
  FakeSink* a = h.addSink("a");
  std::string p1 = h.path("one.log"), p2 = h.path("two.log");
  std::string c1 = "A-long " + std::string(300, 'a') + "\n";
  std::string c2;
  for (int i = 0; i < 40; ++i) {
    c1 += "A-" + std::to_string(i) + "\n";
    c2 += "B-" + std::to_string(i) + "\n";
  }
  writeFile(p1, c1);
  writeFile(p2, c2);
  h.follow(p1);
  h.follow(p2);
  REQUIRE(h.waitFor([&] { return a->received.size() == c1.size() + c2.size(); }));
  std::string got_a, got_b;
  for (const std::string& line : splitLines(a->received)) {
    INFO(line);
    REQUIRE((line.rfind("A-", 0) == 0 || line.rfind("B-", 0) == 0));
    (line[0] == 'A' ? got_a : got_b) += line + "\n";
  }
  CHECK(got_a == c1);
  CHECK(got_b == c2);
}

TEST_CASE("Router: a copy-mode input ships the same bytes through read/write, all counted") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 100);
  writeFile(file, content);
  uint64_t copies = sys::CopyCounter::total();
  h.follow(file, 0, /*copy=*/true);
  REQUIRE(h.waitFor([&] {
    return a->received.size() == content.size() && b->received.size() == content.size();
  }));
  CHECK(a->received == content);
  CHECK(b->received == content);
  CHECK(sys::CopyCounter::total() == copies + 2 * content.size());
}

TEST_CASE("Router: a sink not routed the file's input gets nothing") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* other = h.addSink("other", 256 * 1024, {"another-input"});
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 20);
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size(); }));
  h.loop().runFor(50);
  CHECK(other->received.empty());
  bool seen_other = false;
  h.router().visit([&](const Router::FileSinkView& v) { seen_other |= v.sink == "other"; });
  CHECK_FALSE(seen_other);
  CHECK(h.router().fileDrained(f));
}

TEST_CASE("Router: closing a file a sink lagged on counts the missed bytes") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  b->setCanDeliver(false);
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 30);
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size(); }));
  h.router().checkpoint();
  REQUIRE(h.store().find(f.identity().dev, f.identity().ino) != nullptr);
  h.router().fileClosing(f);  // retention ran out
  CHECK(a->stats().missed_bytes == 0);
  CHECK(b->stats().missed_bytes == content.size());
  CHECK(h.store().find(f.identity().dev, f.identity().ino) == nullptr);
  CHECK(h.router().filesOpen() == 0);
}

// Router::scheduleOnce only fills a sink whose pipe has room for a whole chunk
// (Sink::acceptsData(cfg_.chunk_bytes): in_pipe + chunk_bytes <= capacity). A pipe smaller than
// chunk_bytes therefore never gets a byte. That happens with `pipe_bytes` configured below
// `chunk_bytes` (nothing validates it), and at run time when the per-user pipe budget is spent
// and new pipes silently get 8 KiB (docs/design.md K3): the sink then starves without an error.
TEST_CASE("Router: a sink whose pipe is smaller than a chunk still gets its bytes") {
  Harness h(64 * 1024);
  FakeSink* a = h.addSink("a", 8192);
  REQUIRE(a->pipe().capacity() < 64 * 1024);
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 100);
  writeFile(file, content);
  h.follow(file);
  CHECK(h.waitFor([&] { return a->received.size() == content.size(); }, 1000));
  CHECK(a->received.size() == content.size());
  if (a->received.size() == content.size()) CHECK(a->received == content);
}

TEST_CASE("Router: a fill in flight when a sink breaks is discarded, nothing duplicated") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  a->auto_ack = false;
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 100);
  writeFile(file, content);
  h.router().setInlineFills(false);  // cached pages would be filled at once, on the loop
  h.follow(file);                    // the first fill is now in flight on the I/O thread
  a->breakConnection();              // epoch bumps before the fill comes back
  REQUIRE(h.waitFor([&] { return a->received.size() >= content.size(); }));
  h.loop().runFor(20);
  CHECK(a->received == content);
  a->ackAll();
  REQUIRE(h.waitFor([&] { return h.router().drained(); }));
}

// Router::stop() says fills still queued come back unrun; but IoThread::close() hands them to
// onFillDone(), which calls schedule(), which submits new fills to the stopped thread: they
// are never run, IoThread::inFlight() stays above 0 and Router::drained() never holds again
// (and fileDrained() is false for those files) unless stopFilling() was called first.
TEST_CASE("Router: after stop() nothing is left in flight") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 6000);  // several pipes' worth: fills follow each other
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] { return !a->received.empty(); }));
  h.router().stop();
  CHECK(h.router().drained());
  CHECK((a->received.size() == content.size() || !h.router().fileDrained(f)));
  INFO("after stop(): received " << a->received.size() << " of " << content.size());
  h.loop().runFor(20);
  CHECK(h.router().drained());
}

TEST_CASE("Router: copied bytes are counted for each sink whose pipe got them") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");

  SECTION("a copy-mode file to two sinks in lockstep: each counts every byte") {
    FakeSink* b = h.addSink("b");
    std::string file = h.path("app.log");
    std::string content = numberedLines(0, 200);
    writeFile(file, content);
    uint64_t copies = sys::CopyCounter::total();
    h.follow(file, 0, /*copy=*/true);
    REQUIRE(h.waitFor([&] {
      return a->received.size() == content.size() && b->received.size() == content.size();
    }));
    CHECK(h.router().stats().lockstep_fills > 0);
    CHECK(a->stats().bytes_copied == content.size());
    CHECK(b->stats().bytes_copied == content.size());
    CHECK(sys::CopyCounter::total() - copies == a->stats().bytes_copied + b->stats().bytes_copied);
  }
  SECTION("a copy-mode file to one sink alone; a sink of another input counts nothing") {
    FakeSink* other = h.addSink("other", 256 * 1024, {"another-input"});
    std::string file = h.path("app.log");
    std::string content = numberedLines(0, 200);
    writeFile(file, content);
    h.follow(file, 0, /*copy=*/true);
    REQUIRE(h.waitFor([&] { return a->received.size() == content.size(); }));
    CHECK(h.router().stats().lockstep_fills == 0);
    CHECK(a->stats().bytes_copied == content.size());
    CHECK(other->stats().bytes_copied == 0);
  }
  SECTION("a splice fill copies nothing; an added '\\n' counts 1 for each sink that got it") {
    FakeSink* b = h.addSink("b");
    std::string file = h.path("partial.log");
    writeFile(file, "abc\ndef");
    auto& f = h.follow(file);
    REQUIRE(h.waitFor([&] { return a->received == "abc\n" && b->received == "abc\n"; }));
    CHECK(a->stats().bytes_copied == 0);
    CHECK(b->stats().bytes_copied == 0);
    REQUIRE(f.flushPartialLine());
    h.router().fileGrew(f);
    REQUIRE(h.waitFor([&] { return a->received.size() == 8 && b->received.size() == 8; }));
    CHECK(a->stats().bytes_copied == 1);
    CHECK(b->stats().bytes_copied == 1);
  }
}

TEST_CASE("Router::collectMetrics writes the router families and per (file, sink) offsets") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  b->setCanDeliver(false);
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 50);
  writeFile(file, content);
  h.follow(file);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size(); }));

  testing::RecordingMetricWriter w;
  h.router().collectMetrics(w);
  const RouterStats& st = h.router().stats();
  using T = sys::MetricType;
  struct Want {
    const char* family;
    const char* help;
    uint64_t value;
  };
  const Want singles[] = {
      {"logsplice_router_fills_total", "Fill jobs run by the I/O thread.", st.fills},
      {"logsplice_router_lockstep_fills_total", "Fills that fed several sinks by tee.",
       st.lockstep_fills},
      {"logsplice_router_demotions_total", "Sinks that came up short in a lockstep fill.",
       st.demotions},
      {"logsplice_router_inline_fills_total",
       "Fills run on the loop thread because their pages were in the page cache.",
       st.inline_fills},
      {"logsplice_router_copy_fallbacks_total", "Files switched to read/write.",
       st.copy_fallbacks},
      {"logsplice_router_yields_total",
       "Scheduling passes cut short after 4 MiB so that the loop serves other events.", st.yields},
  };
  for (const Want& want : singles) {
    INFO(want.family);
    auto s = w.of(want.family);
    REQUIRE(s.size() == 1);
    CHECK(s[0].help == want.help);
    CHECK(s[0].type == T::kCounter);
    CHECK(s[0].labels.empty());
    CHECK(s[0].value == static_cast<double>(want.value));
  }
  CHECK(st.fills > 0);

  auto labels = [&](const char* sink) {
    return sys::MetricLabels{{"sink", sink}, {"input", "in"}, {"path", file}};
  };
  auto delivered = w.of("logsplice_file_delivered_bytes");
  REQUIRE(delivered.size() == 2);
  CHECK(delivered[0].help == "Offset delivered per file and sink.");
  CHECK(delivered[0].type == T::kGauge);
  auto lag = w.of("logsplice_file_lag_bytes");
  REQUIRE(lag.size() == 2);
  CHECK(lag[0].help == "Bytes behind the file's complete end.");
  CHECK(lag[0].type == T::kGauge);
  REQUIRE(w.find("logsplice_file_delivered_bytes", labels("a")));
  CHECK(w.find("logsplice_file_delivered_bytes", labels("a"))->value == content.size());
  CHECK(w.find("logsplice_file_delivered_bytes", labels("b"))->value == 0);
  CHECK(w.find("logsplice_file_lag_bytes", labels("a"))->value == 0);
  CHECK(w.find("logsplice_file_lag_bytes", labels("b"))->value == content.size());
  // Every delivered sample comes before the first lag sample (one block per family).
  std::vector<std::string> order = w.families();
  CHECK(order == std::vector<std::string>{
                     "logsplice_router_fills_total", "logsplice_router_lockstep_fills_total",
                     "logsplice_router_demotions_total", "logsplice_router_inline_fills_total",
                     "logsplice_router_copy_fallbacks_total", "logsplice_router_yields_total",
                     "logsplice_file_delivered_bytes", "logsplice_file_lag_bytes"});
}

namespace {

// Answers every residency probe (RWF_NOWAIT read) with `resident`.
class ResidencySysCalls : public testing::FakeSysCalls {
 public:
  explicit ResidencySysCalls(bool resident) : resident_(resident) {}
  std::atomic<int> probes{0};
  sys::SysResult preadv2(int fd, void* buf, size_t len, off_t offset, int flags) override {
    if (!(flags & RWF_NOWAIT)) return SysCalls::preadv2(fd, buf, len, offset, flags);
    ++probes;
    return resident_ ? sys::SysResult{1, 0} : fail(EAGAIN);
  }

 private:
  bool resident_;
};

}  // namespace

TEST_CASE("Router: the residency probe sends cold files to the I/O thread, cached ones inline") {
  // The harness's followers last changed at a fake time long past, so no range counts as fresh:
  // every fill asks the probe, which goes through the router's SysCalls.
  bool resident = GENERATE(false, true);
  ResidencySysCalls sys(resident);
  Harness h(4096, true, sys);
  FakeSink* a = h.addSink("a");
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 500);
  writeFile(file, content);
  h.follow(file);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size(); }));
  CHECK(a->received == content);
  const RouterStats& st = h.router().stats();
  CHECK(st.fills > 0);
  CHECK(sys.probes > 0);
  CHECK(st.inline_fills == (resident ? st.fills : 0));
}

TEST_CASE("Router: a cached backlog is shipped over several loop iterations, not in one call") {
  // An always-ready sink and a file in the page cache: without a budget one scheduling call
  // would ship all of it and the loop would serve nothing else meanwhile.
  Harness h;
  FakeSink* a = h.addSink("a");
  std::string file = h.path("backlog.log");
  std::string content = numberedLines(0, 240'000);  // 24 MB: six budgets of 4 MiB
  writeFile(file, content);
  h.follow(file);
  std::set<size_t> seen_between;  // what had arrived each time the loop turned
  REQUIRE(h.waitFor(
      [&] {
        if (!a->received.empty() && a->received.size() < content.size()) {
          seen_between.insert(a->received.size());
        }
        return a->received.size() == content.size();
      },
      20'000));
  CHECK(a->received == content);
  const RouterStats& st = h.router().stats();
  CHECK(st.inline_fills > 0);
  CHECK(st.yields >= content.size() / kScheduleYieldBytes - 1);
  // The first call runs on a timer, its continuation after the same iteration's poll; later
  // iterations ship one budget each.
  CHECK(seen_between.size() >= 3);
}

TEST_CASE("Router: reload removes a sink and adds it back under a new id, resuming where it was") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  uint32_t old_b_id = b->id();
  std::string file = h.path("app.log");
  std::string content = numberedLines(0, 100);
  writeFile(file, content);
  auto& f = h.follow(file);
  REQUIRE(h.waitFor([&] { return b->received.size() == content.size(); }));

  h.router().removeSink("b");  // b is gone: `b` dangles from here on
  CHECK(h.router().sink("b") == nullptr);
  CHECK(h.router().sinks().size() == 1);
  std::string more = numberedLines(100, 20);
  appendFile(file, more);
  h.refresh(f);
  REQUIRE(h.waitFor([&] { return a->received.size() == content.size() + more.size(); }));

  // Back again: it resumes at its checkpoint offset. A new output starts at the end.
  auto again = std::make_unique<FakeSink>("b", h.router());
  FakeSink* b2 = again.get();
  REQUIRE(h.router().addSinkLive(std::move(again), {"in"}).isOk());
  auto fresh = std::make_unique<FakeSink>("c", h.router());
  FakeSink* c = fresh.get();
  REQUIRE(h.router().addSinkLive(std::move(fresh), {"in"}).isOk());
  CHECK(b2->id() != old_b_id);
  CHECK(c->id() != old_b_id);
  CHECK(h.router().sink("b") == b2);
  REQUIRE(h.waitFor([&] { return b2->received.size() == more.size(); }));
  CHECK(b2->received == more);
  std::string last = numberedLines(120, 5);
  appendFile(file, last);
  h.refresh(f);
  REQUIRE(h.waitFor([&] { return c->received.size() == last.size(); }));
  REQUIRE(h.waitFor([&] { return b2->received.size() == more.size() + last.size(); }));
  CHECK(c->received == last);
  CHECK(b2->received == more + last);
  CHECK(a->received == content + more + last);
  CHECK(h.view(f, "b").delivered == content.size() + more.size() + last.size());
}

TEST_CASE("Router: sinkHolds moves a sink's cursor forward to a line start, never back") {
  Harness h(4096);
  FakeSink* a = h.addSink("a");
  FakeSink* b = h.addSink("b");
  a->setCanDeliver(false);
  std::string p = h.path("app.log");
  std::string content = numberedLines(0, 20, 20);  // 20-byte lines
  writeFile(p, content);
  auto& f = h.follow(p);
  REQUIRE(h.waitFor([&] { return b->received.size() == content.size(); }));
  CHECK(h.view(f, "a").cursor == 0);
  // Its destination holds 105 bytes: the cursor goes to the start of that line (100).
  h.router().sinkHolds(*a, f.id(), f.generation(), 105);
  CHECK(h.view(f, "a").cursor == 100);
  // Not backward, not past what the file holds, not for another generation.
  h.router().sinkHolds(*a, f.id(), f.generation(), 50);
  h.router().sinkHolds(*a, f.id(), f.generation(), content.size() + 1);
  h.router().sinkHolds(*a, f.id(), f.generation() + 1, 300);
  CHECK(h.view(f, "a").cursor == 100);
  a->setCanDeliver(true);
  REQUIRE(h.waitFor([&] { return h.view(f, "a").delivered == content.size(); }));
  CHECK(a->received == content.substr(100));
  CHECK(b->received == content);
}
